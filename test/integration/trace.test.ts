/**
 * `kjx trace` in real QEMU (TCG) with real Debian packages: one image with ftrace and
 * libbpf-tools, built once; each trace boots it once. Then bpftrace's profile on an
 * image with bpftrace (a 69 MB zstd initramfs), and
 * the tracer-service example (examples/trace-workload.yaml): runqlat gates the
 * workload and its histogram is collected on stop with SIGINT. The tracers of the
 * first image run twice: booted (`--cold --no-save`) and restored from a snapshot at
 * ready; the rest (a detached VM, build keys, errors, the big images) once.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TraceSummary } from '../../src/trace/collect.js';
import { REPO, removeAll, runKjx, workspace } from '../helpers/kjx.js';
import { testIn } from '../helpers/modes.js';

const SPEC = `name: tracelab
components: [busybox, runit, dropbear, ftrace, libbpf-tools]
`;

for (const mode of ['cold', 'restored'] as const)
  describe(`kjx trace (${mode})`, () => {
    let ws: string;
    const modeFlags = mode === 'cold' ? ['--cold', '--no-save'] : [];
    let restoredOnce = false;
    // a detached VM, build keys, errors and the big images: once, in the cold suite
    const once = testIn(mode, 'cold');
    // options first: what follows `--` is the workload
    const trace = (args: string[], cwd = ws) =>
      runKjx(['trace', '--accel', 'tcg', ...modeFlags, ...args], { cwd, timeoutMs: 240_000 });
    const summary = (args: string[], cwd = ws): TraceSummary => {
      const r = trace(['--json', ...args], cwd);
      assert.equal(r.code, 0, `kjx trace ${args.join(' ')} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
      let s: TraceSummary;
      try {
        s = JSON.parse(r.stdout) as TraceSummary;
      } catch {
        assert.fail(`kjx trace ${args.join(' ')} --json printed no JSON:\n${r.stdout}\n${r.stderr}`);
      }
      // the trace's memory may make another key than build --snapshot's: then its first run saves
      if (mode === 'cold' || restoredOnce)
        assert.equal(s.target.start, mode === 'cold' ? 'booted' : 'restored');
      restoredOnce = true;
      return s;
    };

    before(() => {
      ws = workspace('trace', SPEC);
      const r = runKjx(['build', ...(mode === 'restored' ? ['--snapshot', '--accel', 'tcg'] : [])], {
        cwd: ws,
        timeoutMs: 600_000,
      });
      assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
    });
    after(() => removeAll(ws));

    test('runqlat under a busy loop: a histogram with events, drawn as SVG with its buckets', () => {
      const s = summary(['runqlat', '--duration', '3', '--', 'sh', '-c', 'while :; do :; done']);
      assert.equal(s.via, 'libbpf-tools runqlat');
      assert.equal(s.workload?.killedAfterDuration, true);
      const h = s.histograms?.[0];
      assert.ok(h && h.total > 0, `no run queue events: ${JSON.stringify(s)}`);
      assert.equal(h.unit, 'usecs');
      const svg = readFileSync(s.files.svg!, 'utf8');
      assert.match(svg, /^<\?xml|^<svg/);
      for (const b of h.buckets.filter((b) => b.count > 0))
        assert.ok(
          svg.includes(`${b.low} -&gt; ${b.high}`) || svg.includes(`${b.low} -> ${b.high}`),
          `bucket ${b.low} -> ${b.high} missing from the SVG`,
        );
      const text = readFileSync(s.files.histogramText!, 'utf8');
      assert.match(text, /usecs\s+: count\s+distribution/);
    });

    test('funccount vfs_read while cat runs: vfs_read counted', () => {
      const s = summary(['funccount', 'vfs_read', '--', 'cat', '/etc/os-release']);
      const row = s.top?.find((r) => r.function === 'vfs_read');
      assert.ok(row, `vfs_read not in ${JSON.stringify(s.top)}`);
      assert.ok(Number(row.count) > 0);
    });

    test('the tracefs versions: runqlat from synthetic events, exec in a private instance, syscalls per process', () => {
      const q = summary([
        'runqlat',
        '--backend',
        'tracefs',
        '--duration',
        '2',
        '--',
        'sh',
        '-c',
        'while :; do :; done',
      ]);
      assert.match(q.via, /tracefs/);
      assert.ok((q.histograms?.[0]?.total ?? 0) > 0, `no run queue events: ${JSON.stringify(q)}`);
      assert.equal(q.histograms?.[0]?.unit, 'usecs');
      const e = summary(['exec', '--backend', 'tracefs', '--', 'sh', '-c', 'ls / >/dev/null; uname -r']);
      assert.match(e.via, /tracefs/);
      const files = (e.top ?? []).map((r) => String(r.filename));
      assert.ok(files.includes('/bin/ls') && files.includes('/bin/uname'), files.join(' '));
      const c = summary(['syscalls', '--', 'cat', '/etc/os-release']);
      assert.match(c.via, /tracefs/);
      assert.ok(
        (c.top ?? []).some((r) => r.process === 'cat' && r.syscall === 'read' && Number(r.count) > 0),
        JSON.stringify(c.top),
      );
    });

    test('offcpu while sleep 1 runs: folded stacks and a flame graph with the scheduler in it', () => {
      const s = summary(['offcpu', '--', 'sleep', '1']);
      assert.ok(s.stacks && s.stacks.unique > 0);
      const folded = readFileSync(s.files.folded!, 'utf8');
      assert.match(folded, /^sleep;.* \d+$/m, 'the workload itself is in the stacks');
      const svg = readFileSync(s.files.svg!, 'utf8');
      assert.match(svg, /\b(__schedule|schedule|finish_task_switch)\b/);
    });

    once('--vm: a detached VM is traced over SSH (funccount), stays up, and is left as it was', () => {
      const state = mkdtempSync(join(tmpdir(), 'kjx-trace-state-'));
      const env = { KJX_STATE_DIR: state };
      try {
        const b = runKjx(['boot', '--detach', '--name', 'tr', '--accel', 'tcg'], { cwd: ws, env });
        assert.equal(b.code, 0, b.stderr);
        const r = runKjx(
          ['trace', '--json', 'funccount', 'vfs_read', '--vm', 'tr', '--', 'cat', '/etc/hostname'],
          {
            cwd: ws,
            env,
          },
        );
        assert.equal(r.code, 0, r.stderr);
        const s = JSON.parse(r.stdout) as TraceSummary;
        assert.equal(s.target.vm, 'tr');
        assert.ok(Number(s.top?.find((x) => x.function === 'vfs_read')?.count) > 0, JSON.stringify(s.top));
        assert.match(r.stderr, /^kjx$/m, "the command's output arrives on stderr");
        // stop undid its kprobes and triggers: the same trace works again, and nothing named kjx is left
        const again = runKjx(['trace', 'funccount', 'vfs_read', '--vm', 'tr', '--duration', '1'], {
          cwd: ws,
          env,
        });
        assert.equal(again.code, 0, again.stderr);
        const left = runKjx(['exec', 'tr', '--', 'cat', '/sys/kernel/tracing/kprobe_events'], {
          cwd: ws,
          env,
        });
        assert.equal(left.code, 0, left.stderr);
        assert.doesNotMatch(left.stdout, /kjx/);
      } finally {
        runKjx(['stop', 'tr'], { cwd: ws, env });
        removeAll(state);
      }
    });

    once(
      'regression: a changed tracing.libbpfTools rebuilds the image (it was not in the base stage key)',
      () => {
        const other = workspace('trace-tools', `${SPEC}tracing:\n  libbpfTools: [runqlat]\n`);
        try {
          const r = runKjx(['build'], { cwd: other });
          assert.equal(r.code, 0, r.stderr);
          const paths = (ws: string) =>
            (
              JSON.parse(readFileSync(join(ws, 'dist', 'manifest.json'), 'utf8')) as {
                files: { path: string }[];
              }
            ).files
              .map((f) => f.path)
              .filter((p) => p.startsWith('/usr/sbin/'));
          assert.ok(paths(other).includes('/usr/sbin/runqlat'));
          assert.ok(
            !paths(other).includes('/usr/sbin/execsnoop'),
            'the default tools came from a cached stage',
          );
          assert.ok(paths(ws).includes('/usr/sbin/execsnoop'));
        } finally {
          removeAll(other);
        }
      },
    );

    once('a tracer whose component is missing: a clear error before anything boots', () => {
      const r = trace(['profile', '--duration', '1']);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /profile needs bpftrace/);
      assert.match(r.stderr, /add bpftrace to components in kjx\.yaml/);
    });

    once('an unknown tracer is a usage error', () => {
      const r = trace(['runqlatt']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /unknown tracer "runqlatt" \(did you mean "runqlat"\?\)/);
    });

    once(
      'profile on a bpftrace image (LLVM in the initramfs, 2 GiB guest): on-CPU stacks of the busy loop',
      () => {
        const bt = workspace(
          'trace-bpftrace',
          // zstd: the kernel unpacks 69 MB of LLVM faster than from gzip
          'name: bt\ncomponents: [busybox, runit, dropbear, bpftrace]\ncompression: zstd\n',
        );
        try {
          const s = summary(['profile', '--duration', '2', '--', 'sh', '-c', 'while :; do :; done'], bt);
          assert.equal(s.via, 'bpftrace profile:hz:99');
          assert.ok(s.stacks && s.stacks.total > 0, JSON.stringify(s));
          const folded = readFileSync(s.files.folded!, 'utf8');
          assert.match(folded, /^sh;/m, `the busy shell was not sampled:\n${folded.slice(0, 2000)}`);
        } finally {
          removeAll(bt);
        }
      },
    );

    once(
      'examples/trace-workload.yaml: runqlat is ready before the workload starts, and its histogram comes home on stop',
      () => {
        const ex = workspace('trace-workload', '');
        try {
          cpSync(join(REPO, 'examples', 'trace-workload.yaml'), join(ex, 'kjx.yaml'));
          const s = summary(['service', 'tracer', '--duration', '2'], ex);
          assert.ok(s.histograms?.[0] && s.histograms[0].total > 0, JSON.stringify(s));
          const at = (name: string, state: string) =>
            s.services?.find((e) => e.name === name && e.state === state)?.uptime ?? Number.NaN;
          assert.ok(at('tracer', 'ready') <= at('workload', 'up'), JSON.stringify(s.services));
          assert.ok(existsSync(s.files.svg!));
        } finally {
          removeAll(ex);
        }
      },
    );
  });
