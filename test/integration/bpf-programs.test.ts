/**
 * Users' own eBPF programs (tracing.programs) end to end: the examples compiled on
 * the host against the image kernel's BTF and run in real QEMU (TCG) with real
 * Debian packages —
 *
 * - examples/bpf-programs: the runqlat-like histogram (generic loader), the syscall
 *   counter with a C loader and with a Go loader (cilium/ebpf), exec events from a
 *   ring buffer;
 * - examples/bpf-handshake: the parent-process handshake as a service, checked from
 *   its timestamps and counts;
 * - CO-RE: the object compiled for one kernel runs on every kernel in KERNELS;
 * - a program the verifier rejects, one that does not compile, and a host without clang.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Btf, parseBtf } from '../../src/bpf/btf.js';
import { kernelBtf } from '../../src/bpf/kernel-btf.js';
import { vmlinuxOf } from '../../src/bpf/stage.js';
import type { TraceSummary } from '../../src/trace/collect.js';
import { progResults } from '../../src/trace/prog-results.js';
import { stripServiceLog } from '../../src/trace/results.js';
import { probeTool } from '../../src/util/host-tools.js';
import { KJX, kjxEnv, REPO, removeAll, runKjx, workspace } from '../helpers/kjx.js';

/**
 * Every kernel kjx boots, as the `kernel:` of a spec. The objects of
 * examples/bpf-programs are compiled against the first one's BTF and must run on
 * all of them. When kjx builds kernels from source (issue 13), its kernel is one
 * more entry here.
 */
const KERNELS: { label: string; kernel: string }[] = [
  { label: "Debian's cloud kernel", kernel: 'package: linux-image-cloud-amd64' },
  { label: "Debian's generic kernel", kernel: 'package: linux-image-amd64' },
];

const copyExample = (name: string): string => {
  const ws = workspace(name, '');
  cpSync(join(REPO, 'examples', name), ws, { recursive: true });
  return ws;
};

function traceJson(ws: string, args: string[]): TraceSummary {
  const r = runKjx(['trace', '--accel', 'tcg', '--json', ...args], { cwd: ws, timeoutMs: 300_000 });
  assert.equal(r.code, 0, `kjx trace ${args.join(' ')} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout) as TraceSummary;
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

describe('kjx trace prog: examples/bpf-programs', () => {
  let ws: string;
  before(() => {
    ws = copyExample('bpf-programs');
    const r = runKjx(['build'], { cwd: ws, timeoutMs: 900_000 });
    assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
  });
  after(() => removeAll(ws));

  test('runqlat with the generic loader: a log2 histogram in usecs, drawn, and the map in maps.json', () => {
    const s = traceJson(ws, ['prog', 'runqlat', '--duration', '3', '--', 'sh', '-c', 'while :; do :; done']);
    assert.equal(s.via, 'tracing.programs runqlat (kjx-bpf-run)');
    assert.deepEqual(
      s.program?.attached.map((a) => a.section),
      ['tp_btf/sched_wakeup', 'tp_btf/sched_wakeup_new', 'tp_btf/sched_switch'],
    );
    const h = s.histograms?.[0];
    assert.ok(h && h.total > 0 && h.unit === 'usecs', JSON.stringify(s.histograms));
    assert.match(readFileSync(s.files.svg!, 'utf8'), /^<\?xml|^<svg/);
    const maps = readJson(s.files.maps!);
    const slots = (maps.runq_us as { value: { slots: number[] } }[])[0]!.value.slots;
    assert.equal(
      slots.reduce((a, b) => a + b, 0),
      h.total,
    );
  });

  test('syscount with its C loader: its own table, and the map with char[16] keys read as text', () => {
    const s = traceJson(ws, ['prog', 'syscount', '--', 'cat', '/etc/os-release']);
    const raw = readFileSync(s.files.raw!, 'utf8');
    assert.match(raw, /^PID\s+COMM\s+SYSCALLS$/m, raw);
    assert.match(raw, /^\d+\s+cat\s+\d+$/m, raw);
    const cat = s.top?.find((r) => r.comm === 'cat');
    assert.ok(cat && Number(cat.value) > 0, JSON.stringify(s.top));
    const maps = readJson(s.files.maps!);
    const counts = maps.counts as { key: { pid: number; comm: string }; value: number }[];
    assert.ok(counts.some((e) => e.key.comm === 'cat' && e.value === cat.value));
    assert.ok(Number(s.counters?.total) >= Number(cat.value));
  });

  test('gosyscount: the same counter with a Go loader (cilium/ebpf), its maps read before it stops', () => {
    const s = traceJson(ws, ['prog', 'gosyscount', '--', 'cat', '/etc/os-release']);
    assert.equal(s.via, 'tracing.programs gosyscount (Go loader, cilium/ebpf)');
    const raw = readFileSync(s.files.raw!, 'utf8');
    assert.match(raw, /^\d+\s+cat\s+\d+$/m, raw);
    assert.ok(
      s.top?.some((r) => r.comm === 'cat' && Number(r.value) > 0),
      JSON.stringify(s.top),
    );
  });

  test('execs: ring buffer records as JSON lines, rendered through struct event', () => {
    const s = traceJson(ws, ['prog', 'execs', '--', 'sh', '-c', 'ls / >/dev/null; uname -r']);
    const events = readFileSync(s.files.events!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { map: string; event: { comm: string; filename: string; pid: number } });
    const files = events.map((e) => e.event.filename);
    assert.ok(files.includes('/bin/ls') && files.includes('/bin/uname'), files.join(' '));
    assert.ok(events.every((e) => e.map === 'events' && typeof e.event.comm === 'string' && e.event.pid > 0));
    assert.equal(s.events, events.length);
    assert.equal(s.counters?.execs, events.length);
  });

  test('--vm and -o: a program traced in a detached VM over SSH, its results in the given directory, twice', () => {
    const state = mkdtempSync(join(tmpdir(), 'kjx-prog-state-'));
    const out = mkdtempSync(join(tmpdir(), 'kjx-prog-out-'));
    const env = { KJX_STATE_DIR: state };
    try {
      const b = runKjx(['boot', '--detach', '--name', 'progvm', '--accel', 'tcg'], { cwd: ws, env });
      assert.equal(b.code, 0, b.stderr);
      for (const round of [1, 2]) {
        const dir = join(out, `r${round}`);
        const r = runKjx(
          ['trace', '--json', 'prog', 'syscount', '--vm', 'progvm', '-o', dir, '--', 'cat', '/etc/hostname'],
          { cwd: ws, env, timeoutMs: 300_000 },
        );
        assert.equal(r.code, 0, `round ${round}: ${r.stderr}`);
        const s = JSON.parse(r.stdout) as TraceSummary;
        assert.equal(s.target.vm, 'progvm');
        assert.ok(
          s.top?.some((x) => x.comm === 'cat' && Number(x.value) > 0),
          JSON.stringify(s.top),
        );
        // every file of the trace is in DIR, maps.json among them
        assert.ok(s.files.maps?.startsWith(`${dir}/`), JSON.stringify(s.files));
        assert.ok(readdirSync(dir).includes('maps.json') && readdirSync(dir).includes('summary.json'));
      }
    } finally {
      runKjx(['stop', 'progvm'], { cwd: ws, env });
      removeAll(state, out);
    }
  });
});

describe('examples/bpf-handshake: the parent-process handshake as a service', () => {
  let ws: string;
  before(() => {
    ws = copyExample('bpf-handshake');
  });
  after(() => removeAll(ws));

  test('the workload starts only after the probes are attached, and its first system call is seen', () => {
    const s = traceJson(ws, ['service', 'handshake', '--duration', '3']);
    // svlogd's stamps off, as kjx reads the log
    const log = stripServiceLog(readFileSync(s.files.raw!, 'utf8'));
    const num = (re: RegExp) => {
      const m = re.exec(log);
      assert.ok(m, `${re} not in the service log:\n${log}`);
      return BigInt(m[1]!);
    };
    const attached = num(/^tracer: attached_ns=(\d+)$/m);
    const released = num(/^workload: released_ns=(\d+) /m);
    const first = num(/^tracer: events=\d+ first_ns=(\d+) /m);
    const events = num(/^tracer: events=(\d+) /m);
    assert.equal(
      num(/first_syscall=(-?\d+)$/m),
      39n,
      "the first event is the workload's getpid, its first call",
    );
    assert.ok(attached < first, `attached ${attached} before the first event ${first}`);
    assert.ok(first <= released, `the first event ${first} is the workload's, before it stamped ${released}`);
    assert.ok(events > 1n, `${events} events`);
    assert.match(log, /^parent: tracer exited \(0\)$/m);
    assert.ok(
      s.services?.some((e) => e.name === 'handshake' && e.state === 'up'),
      JSON.stringify(s.services),
    );
  });
});

describe('a program as a service: ready: signal from the generic loader gates the workload', () => {
  let ws: string;
  before(() => {
    ws = workspace(
      'bpf-service',
      [
        'name: bpf-service',
        'components: [busybox, runit, dropbear]',
        'tracing:',
        '  programs:',
        '    - {name: runqlat, bpf: ./runqlat.bpf.c}',
        'services:',
        '  tracer:',
        '    run: kjx-prog runqlat',
        '    ready: signal',
        '    stopSignal: INT',
        '    restart: never',
        '  workload:',
        "    run: sh -c 'while :; do :; done'",
        '    needs: [tracer]',
        '',
      ].join('\n'),
    );
    cpSync(join(REPO, 'examples', 'bpf-programs', 'runqlat.bpf.c'), join(ws, 'runqlat.bpf.c'));
  });
  after(() => removeAll(ws));

  test('the workload starts once kjx-bpf-run is attached; kjx trace service reads its maps', () => {
    const s = traceJson(ws, ['service', 'tracer', '--duration', '2']);
    const at = (name: string, state: string) =>
      s.services?.find((e) => e.name === name && e.state === state)?.uptime ?? Number.NaN;
    assert.ok(at('tracer', 'ready') <= at('workload', 'up'), JSON.stringify(s.services));
    assert.equal(s.via, 'service tracer');
    assert.ok((s.histograms?.[0]?.total ?? 0) > 0, JSON.stringify(s));
    assert.ok(s.files.maps, 'maps.json from kjx-bpf-run --dump-maps of the service');
  });
});

describe('CO-RE: one object on every kernel kjx boots', () => {
  const dirs: string[] = [];
  after(() => removeAll(...dirs));

  const btfOf = async (ws: string): Promise<Btf> => {
    const elf = await vmlinuxOf(readFileSync(join(ws, 'dist', 'vmlinuz')), ws);
    assert.ok(elf.ok);
    return parseBtf(kernelBtf(elf.elf)!);
  };
  const structSize = (btf: Btf, name: string): number | undefined => {
    for (const t of btf.types) if (t.kind === 'struct' && t.name === name) return t.size;
    return undefined;
  };

  test(`runqlat compiled for ${KERNELS[0]!.label} runs on ${KERNELS.map((k) => k.label).join(', ')}`, async () => {
    const spec = (kernel: string) =>
      [
        'name: core',
        'components: [busybox, runit, dropbear]',
        'kernel:',
        `  ${kernel}`,
        'tracing:',
        '  programs:',
        '    - {name: runqlat, bpf: ./runqlat.bpf.c}',
        '',
      ].join('\n');
    const built = KERNELS.map((k) => {
      const ws = workspace('bpf-core', spec(k.kernel));
      dirs.push(ws);
      cpSync(join(REPO, 'examples', 'bpf-programs', 'runqlat.bpf.c'), join(ws, 'runqlat.bpf.c'));
      const r = runKjx(['build'], { cwd: ws, timeoutMs: 900_000 });
      assert.equal(r.code, 0, `${k.label}: kjx build failed:\n${r.stderr}`);
      return ws;
    });
    // the object built for the first kernel, taken out of its image
    const obj = spawnSync(
      process.execPath,
      [
        KJX,
        'inspect',
        join(built[0]!, 'dist', 'initramfs.cpio.gz'),
        '/usr/lib/kjx/bpf/runqlat/runqlat.bpf.o',
      ],
      { env: kjxEnv({ cwd: built[0]! }) },
    ).stdout;
    assert.equal(obj.subarray(0, 4).toString('latin1'), '\x7fELF');
    const objFile = join(built[0]!, 'core.bpf.o');
    writeFileSync(objFile, obj);

    // the kernels differ where the program reads them: task_struct is laid out differently
    const first = await btfOf(built[0]!);
    for (const [i, ws] of built.entries()) {
      if (i > 0) {
        const other = await btfOf(ws);
        assert.notEqual(
          structSize(other, 'task_struct'),
          structSize(first, 'task_struct'),
          `${KERNELS[i]!.label}: task_struct has the same size as on ${KERNELS[0]!.label}; pick kernels that differ`,
        );
      }
      const script = [
        'kjx-bpf-run /srv/core.bpf.o >/tmp/out 2>/tmp/err & p=$!',
        'i=0; until grep -qxF \'{"type":"ready"}\' /tmp/out; do',
        '  i=$((i + 1)); [ $i -lt 600 ] && kill -0 $p || { cat /tmp/err >&2; exit 1; }; sleep 0.2',
        'done',
        '( while :; do :; done ) & b=$!; sleep 2; kill $b',
        'kill -INT $p; wait $p',
        'cat /tmp/out',
      ].join('\n');
      const r = spawnSync(
        process.execPath,
        [KJX, 'run', '--accel', 'tcg', '--mount', `${objFile}:/srv/core.bpf.o`, '--', 'sh', '-c', script],
        { cwd: ws, env: kjxEnv({ cwd: ws }), encoding: 'utf8', timeout: 600_000 },
      );
      assert.equal(r.status, 0, `${KERNELS[i]!.label}: ${r.stderr}`);
      const res = progResults(r.stdout, '');
      assert.equal(res.loader.attached.length, 3, `${KERNELS[i]!.label}: ${r.stdout.slice(0, 500)}`);
      const total = res.results.histograms[0]?.buckets.reduce((a, b) => a + b.count, 0) ?? 0;
      assert.ok(total > 0, `${KERNELS[i]!.label}: no run queue events`);
    }
  });
});

describe('when a program is wrong, or the host lacks the toolchain', () => {
  const dirs: string[] = [];
  after(() => removeAll(...dirs));

  test("a program the verifier rejects: kjx trace prog exits 1 with the failing line of the verifier's log", () => {
    const ws = workspace(
      'bpf-verifier',
      'name: bad\ncomponents: [busybox, runit, dropbear]\ntracing:\n  programs:\n    - {name: bad, bpf: ./bad.bpf.c}\n',
    );
    dirs.push(ws);
    writeFileSync(
      join(ws, 'bad.bpf.c'),
      [
        '#include "vmlinux.h"',
        '#include <bpf/bpf_helpers.h>',
        '',
        'struct {',
        '\t__uint(type, BPF_MAP_TYPE_HASH);',
        '\t__uint(max_entries, 16);',
        '\t__type(key, u32);',
        '\t__type(value, u64);',
        '} counts SEC(".maps");',
        '',
        'SEC("tracepoint/raw_syscalls/sys_enter")',
        'int on_enter(void *ctx)',
        '{',
        '\tu32 k = bpf_get_current_pid_tgid() >> 32;',
        '\tu64 *v = bpf_map_lookup_elem(&counts, &k);',
        '\t*v += 1; /* no NULL check */',
        '\treturn 0;',
        '}',
        'char LICENSE[] SEC("license") = "GPL";',
        '',
      ].join('\n'),
    );
    const r = runKjx(['trace', '--accel', 'tcg', 'prog', 'bad', '--duration', '1'], {
      cwd: ws,
      timeoutMs: 600_000,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /program bad: the kernel's verifier rejected on_enter\(\):/);
    assert.match(r.stderr, /\.\/bad\.bpf\.c:16: \*v \+= 1; \/\* no NULL check \*\//);
    assert.match(r.stderr, /R0 invalid mem access 'map_value_or_null'/);
    assert.match(r.stderr, /the whole verifier log \(\d+ lines\) is in .*prog\.stderr\.txt/);
  });

  test("a compile error: kjx build exits 3 with the compiler's file:line:column", () => {
    const ws = workspace('bpf-broken', 'tracing:\n  programs:\n    - {name: broken, bpf: ./broken.bpf.c}\n');
    dirs.push(ws);
    writeFileSync(join(ws, 'broken.bpf.c'), '#include "vmlinux.h"\n\nint f(void) { return nope; }\n');
    const r = runKjx(['build'], { cwd: ws, timeoutMs: 600_000 });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /kjx: error: tracing\.programs broken: broken\.bpf\.c: 1 error/);
    assert.match(r.stderr, /broken\.bpf\.c:3:22: error: use of undeclared identifier 'nope'/);
    assert.ok(
      !readdirSync(ws).includes('dist') ||
        !readdirSync(join(ws, 'dist')).some((f) => f.startsWith('initramfs')),
    );
  });

  test('a host without clang: kjx build exits 4 with the exact install line, before downloading anything', () => {
    const ws = workspace('bpf-noclang', 'tracing:\n  programs:\n    - {name: p, bpf: ./p.bpf.c}\n');
    dirs.push(ws);
    writeFileSync(join(ws, 'p.bpf.c'), '// nothing\n');
    const bin = mkdtempSync(join(tmpdir(), 'kjx-noclang-bin-'));
    dirs.push(bin);
    for (const c of ['llvm-strip', 'bpftool', 'gcc']) {
      const p = probeTool({ command: c, package: c, versionArgs: [], why: '', needFor: [] }).path;
      assert.ok(p, `${c} must be installed for this test`);
      symlinkSync(p, join(bin, c));
    }
    const r = runKjx(['build'], { cwd: ws, env: { PATH: bin } });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /tracing\.programs needs host tools that are missing: clang \(clang\)/);
    assert.match(r.stderr, /install them with: apt-get install -y --no-install-recommends clang$/m);
    assert.doesNotMatch(r.stderr, /fetch|downloading/);
  });
});
