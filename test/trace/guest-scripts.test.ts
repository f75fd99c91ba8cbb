/**
 * The guest-side driver of `kjx trace` and its framing: generated scripts parse
 * (busybox sh -n), a driver runs for real on the host under busybox sh (the guest's
 * shell) with stand-in tracers and its framed output reads back, the --duration limit
 * stops a workload, and frames cut short are errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { bpfReadyScript } from '../../src/guest/bpf-ready.js';
import { ftraceHelperScript } from '../../src/guest/ftrace-helper.js';
import { parseFrames, parseMeta } from '../../src/trace/collect.js';
import { FRAME_PREFIX, traceDriverScript } from '../../src/trace/guest-scripts.js';
import { type GuestTracer, planTracer } from '../../src/trace/tracers.js';
import { busyboxParses, busyboxSh, needsBusybox } from '../helpers/busybox.js';

const skip = needsBusybox();

const shOk = (script: string) => {
  const r = busyboxParses(script);
  assert.ok(r.ok, r.error);
};

/** A "tracer" made of host commands: start does nothing, stop prints the results. */
const fake = (stop: string[]): GuestTracer => ({
  tracer: 'runqlat',
  kind: 'helper',
  start: ['true'],
  stop,
  via: 'test',
  format: 'text',
});

/**
 * Bounds for runs of the driver on the host: each test below takes well under a
 * second on an idle host (a workload stopped by --duration 1: about 1-3 s). The
 * bound is wide for a loaded 2-core one, and the sleeps a broken driver would leave
 * holding its output open (or a workload it failed to stop) last far longer, so a
 * hang still fails the test.
 */
const BOUND_MS = 60_000;
/** Seconds that outlast BOUND_MS: what a leaked sleep or an unstopped workload runs for. */
const LONG_S = 300;

function drive(t: GuestTracer, o: Parameters<typeof traceDriverScript>[1]) {
  const t0 = performance.now();
  const r = busyboxSh(['-c', traceDriverScript(t, o)], { timeout: 2 * BOUND_MS });
  return {
    frames: parseFrames(r.stdout),
    stderr: r.stderr.toString(),
    status: r.status,
    ms: performance.now() - t0,
  };
}

describe('generated scripts', { skip }, () => {
  const tools = {
    components: ['ftrace', 'libbpf-tools', 'bpftrace'],
    libbpfTools: ['runqlat', 'offcputime', 'execsnoop'],
  };
  test('every driver, the ftrace helper and kjx-bpf-ready are valid sh', () => {
    for (const req of [
      { tracer: 'runqlat' },
      { tracer: 'runqlat', backend: 'tracefs' },
      { tracer: 'funccount', arg: 'vfs_*' },
      { tracer: 'offcpu' },
      { tracer: 'syscalls' },
      { tracer: 'exec' },
      { tracer: 'profile' },
      { tracer: 'bpftrace', program: "kprobe:vfs_read { @[comm] = count(); } // it's" },
      { tracer: 'service', arg: 'tracer' },
      { tracer: 'service', arg: 'hs', serviceRun: 'kjx-prog hs' },
      { tracer: 'prog', arg: 'execs' },
      { tracer: 'prog', arg: 'top' },
    ] as const) {
      const plan = planTracer(req, {
        ...tools,
        programs: [
          { name: 'execs', loader: 'generic' },
          { name: 'top', loader: 'c' },
        ],
      });
      shOk(traceDriverScript(plan, { workload: ['sh', '-c', "echo 'quoted; $x'"], durationS: 3 }));
      shOk(traceDriverScript(plan, {}));
    }
    shOk(ftraceHelperScript());
    shOk(bpfReadyScript());
  });
  test('a BPF tool is run as planned, the workload as given', () => {
    const s = traceDriverScript(planTracer({ tracer: 'offcpu' }, tools), { workload: ['sleep', '1'] });
    assert.match(s, /^KJX_KIND=process$/m);
    assert.match(s, /^KJX_TRACER_ARGV=offcputime$/m);
    assert.match(s, /^KJX_WORKLOAD='sleep 1'$/m);
    assert.match(s, /^exec 3>&1 1>&2$/m);
  });
  test('the driver fits in one SSH command (dropbear takes 9000 bytes), with a bpftrace program of 1 KiB', () => {
    const program = `kprobe:vfs_read { @[comm] = count(); } ${'// padding, as a longer program would have '.repeat(24)}`;
    assert.ok(program.length >= 1024);
    const script = traceDriverScript(planTracer({ tracer: 'bpftrace', program }, tools), {
      workload: ['sh', '-c', "echo 'a workload'"],
      durationS: 3,
    });
    // what the SSH exec request carries: the argv quoted for the guest's shell (ssh-client.ts)
    const command = ['/bin/sh', '-c', script].map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
    assert.ok(command.length <= 9000, `${command.length} bytes`);
  });
});

describe('the driver, run on the host', { skip }, () => {
  test('a BPF tool is stopped with SIGINT and waited for; the workload runs in its own session', () => {
    // python stands in for the tool: it prints what stopped it, and only then exits
    const tool: GuestTracer = {
      tracer: 'offcpu',
      kind: 'process',
      argv: [
        'python3',
        '-c',
        "import signal,sys,time\ndef stop(*a):\n  time.sleep(0.5); print('stopped by INT', flush=True); sys.exit(0)\nsignal.signal(signal.SIGINT, stop)\nprint('ready', flush=True)\ntime.sleep(60)",
      ],
      readyLine: 'ready',
      via: 'test',
      format: 'text',
    };
    const r = drive(tool, {
      workload: [
        'python3',
        '-c',
        "import os; print('own session' if os.getsid(0) == os.getpid() else 'shared session')",
      ],
    });
    assert.ok(r.frames.complete, r.stderr);
    assert.equal(r.frames.files.get('out')?.toString(), 'ready\nstopped by INT\n');
    assert.equal(parseMeta(r.frames.files.get('meta')!.toString()).tracer_status, '0');
    assert.match(r.stderr, /^own session$/m);
  });
  test('an ephemeral VM keeps its tracefs state at stop (it powers off); a detached one gets it undone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-trace-keep-'));
    try {
      const log = join(dir, 'log');
      const helper = fake(['sh', '-c', `echo stop "$@" >>${log}`, 'kjx-ftrace']);
      for (const ephemeral of [true, false])
        assert.ok(drive(helper, { ephemeral, durationS: 0 }).frames.complete);
      assert.equal(readFileSync(log, 'utf8'), 'stop --keep\nstop\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('a program with its own loader: kjx-bpf-run dumps the maps while the loader holds them, before SIGINT, and they are shipped', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-trace-maps-'));
    try {
      // the stand-in kjx-bpf-run says whether the loader it was given is still running
      const dumper = join(dir, 'kjx-bpf-run');
      writeFileSync(dumper, '#!/bin/sh\nkill -0 "$2" && echo "{\\"maps of\\": \\"$1 $2\\"}"\n', {
        mode: 0o755,
      });
      const loader = planTracer(
        { tracer: 'prog', arg: 'top' },
        { components: [], libbpfTools: [], programs: [{ name: 'top', loader: 'c' }] },
      );
      assert.ok(loader.kind === 'process' && loader.dumpMaps === true);
      const script = traceDriverScript(
        {
          ...loader,
          argv: [
            'python3',
            '-c',
            "import signal,sys,time\ndef stop(*a):\n  print('table at stop', flush=True); sys.exit(0)\nsignal.signal(signal.SIGINT, stop)\nprint('attached', flush=True)\ntime.sleep(60)",
          ],
          readyLine: 'attached',
        },
        { durationS: 0 },
      );
      // the one value a host run changes: where kjx-bpf-run is
      const line = 'KJX_DUMP_MAPS=/usr/sbin/kjx-bpf-run';
      assert.ok(script.includes(`${line}\n`), script);
      const r = busyboxSh(['-c', script.replace(line, `KJX_DUMP_MAPS=${dumper}`)], { timeout: 2 * BOUND_MS });
      const frames = parseFrames(r.stdout);
      assert.ok(frames.complete, r.stderr.toString());
      assert.match(frames.files.get('maps')?.toString() ?? '', /^\{"maps of": "--dump-maps \d+"\}\n$/);
      assert.equal(frames.files.get('out')?.toString(), 'attached\ntable at stop\n');
      // a tracer without a loader of its own ships no maps file
      const plain = drive(fake(['echo', 'results']), { durationS: 0 });
      assert.equal(plain.frames.files.has('maps'), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('ships out, err and meta framed on stdout; the workload output goes to stderr', () => {
    const r = drive(fake(['printf', `line one\n${FRAME_PREFIX}end (inside a file is fine)\n`]), {
      workload: ['sh', '-c', 'echo workload says hi; exit 3'],
    });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.frames.complete);
    assert.equal(
      r.frames.files.get('out')?.toString(),
      `line one\n${FRAME_PREFIX}end (inside a file is fine)\n`,
    );
    assert.match(r.stderr, /workload says hi/);
    const meta = parseMeta(r.frames.files.get('meta')!.toString());
    assert.equal(meta.workload_status, '3');
    assert.equal(meta.tracer_status, '0');
    assert.equal(meta.workload_killed, undefined);
    assert.ok(Number(meta.t_workload_end) >= Number(meta.t_attached));
  });
  test('a workload done before --duration ends leaves no sleep behind holding the output open', () => {
    // a duration no other test run on this machine uses at the same time, so pgrep finds only ours
    const duration = LONG_S + (process.pid % 997);
    const r = drive(fake(['true']), { workload: ['true'], durationS: duration });
    assert.ok(r.ms < BOUND_MS, `the watchdog's sleep kept stdout/stderr open (${Math.round(r.ms)} ms)`);
    const left = spawnSync('pgrep', ['-fx', `sleep ${duration}`], { encoding: 'utf8' });
    assert.equal(left.stdout, '', 'the watchdog left its sleep running');
    assert.ok(r.frames.complete);
    assert.equal(parseMeta(r.frames.files.get('meta')!.toString()).workload_killed, undefined);
  });
  test('a tracer that stops at SIGINT leaves no guard sleep behind; it and the workload do not get fd 3', () => {
    // python stands in for a BPF tool: it handles SIGINT itself (a backgrounded sh could not)
    const tracer: GuestTracer = {
      tracer: 'bpftrace',
      kind: 'process',
      argv: [
        'python3',
        '-c',
        "import os,signal,sys,time\nsignal.signal(signal.SIGINT, lambda *a: sys.exit(0))\ntry:\n  os.fstat(3); print('fd3 open')\nexcept OSError:\n  print('fd3 closed')\nprint('ready', flush=True)\ntime.sleep(60)",
      ],
      readyLine: 'ready',
      via: 'test',
      format: 'text',
    };
    // the guard sleeps STOP_TIMEOUT (120 s) > BOUND_MS
    const r = drive(tracer, {
      workload: ['sh', '-c', 'if { true >&3; } 2>/dev/null; then echo W3-open; fi'],
    });
    assert.ok(r.ms < BOUND_MS, `the guard's sleep kept stdout/stderr open (${Math.round(r.ms)} ms)`);
    assert.ok(r.frames.complete, r.stderr);
    assert.match(r.frames.files.get('out')!.toString(), /fd3 closed/);
    assert.doesNotMatch(r.stderr, /W3-open/);
  });
  test('--duration sends SIGKILL when SIGTERM is not enough', () => {
    const r = drive(fake(['true']), {
      workload: ['sh', '-c', `trap '' TERM; sleep ${LONG_S} & wait; wait`],
      durationS: 1,
    });
    assert.ok(r.ms < BOUND_MS, `the workload ignored SIGTERM and was left running (${Math.round(r.ms)} ms)`);
    const meta = parseMeta(r.frames.files.get('meta')!.toString());
    assert.equal(meta.workload_killed, '1');
    assert.equal(meta.workload_status, '137');
  });
  test('interrupted, the driver stops the tracer: the helper is stopped and $D removed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-trace-int-'));
    try {
      const log = join(dir, 'log');
      const t: GuestTracer = { ...fake(['sh', '-c', `echo stopped >>${log}`]) } as GuestTracer;
      const started = join(dir, 'started');
      // the workload says it runs; the driver is interrupted then, not after a fixed time
      const script = traceDriverScript(t, {
        workload: ['sh', '-c', `: >${started}; exec sleep ${LONG_S}`],
      });
      const child = busyboxSh(
        [
          '-c',
          `busybox sh -c '${script.replace(/'/g, "'\\''")}' & p=$!
n=0; while [ ! -e ${started} ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
kill -TERM $p; wait $p; echo status=$?`,
        ],
        {
          timeout: 2 * BOUND_MS,
          encoding: 'utf8',
        },
      );
      assert.match(child.stdout, /status=143/);
      assert.equal(readFileSync(log, 'utf8'), 'stopped\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('kjx-ftrace: exec uses its own instance, funccount clears leftovers and restores set_ftrace_filter', () => {
    const h = ftraceHelperScript();
    assert.doesNotMatch(
      h,
      /\$T\/tracing_on|>\s*"?\$T\/trace\b/,
      'the global buffer and tracing_on are not touched',
    );
    assert.match(h, /^KJX_EXEC_INSTANCE=kjx-exec$/m);
    assert.match(h, /^I=\$T\/instances\/\$KJX_EXEC_INSTANCE$/m);
    const start = h.slice(h.indexOf('funccount_start() {'), h.indexOf('funccount_stop() {'));
    assert.match(start, /^ {2}probes_clear$/m);
    assert.match(
      start,
      /trigger" \|\| \{ echo "-:kjx\/fc\$n" >>"\$T\/kprobe_events"/,
      'a probe whose trigger failed is removed',
    );
    assert.match(start, /restore; die "no traceable/);
    assert.match(start, /fns=\$\(cat "\$T\/set_ftrace_filter"\)\n {2}restore$/m);
  });
  test('funccount/syscalls triggers leave out the driver (its uptime reads are not counted)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-trace-exclude-'));
    try {
      // the start command says which pid it is told to leave out, and which pid started it
      const log = join(dir, 'log');
      const t = {
        ...fake(['true']),
        start: ['sh', '-c', `echo "$KJX_FTRACE_EXCLUDE_PID $PPID" >${log}`],
      } as GuestTracer;
      assert.ok(drive(t, { workload: ['true'] }).frames.complete);
      const [excluded, parent] = readFileSync(log, 'utf8').trim().split(' ');
      assert.match(excluded ?? '', /^[0-9]+$/);
      assert.equal(excluded, parent, 'the driver itself is left out');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const plan = planTracer(
      { tracer: 'funccount', arg: 'vfs_read' },
      { components: ['ftrace'], libbpfTools: [] },
    );
    assert.doesNotMatch(
      traceDriverScript(plan, { workload: ['true'] }),
      /\$\(up\)/,
      'no subshell (another pid) reads /proc/uptime',
    );
    assert.match(ftraceHelperScript(), /common_pid != \$KJX_FTRACE_EXCLUDE_PID/);
  });
  test('--duration stops a workload that runs longer, with all its processes', () => {
    const r = drive(fake(['true']), {
      workload: ['sh', '-c', `sleep ${LONG_S} & sleep ${LONG_S}; wait`],
      durationS: 1,
    });
    assert.ok(r.ms < BOUND_MS, `the workload was not stopped (${Math.round(r.ms)} ms)`);
    const meta = parseMeta(r.frames.files.get('meta')!.toString());
    assert.equal(meta.workload_killed, '1');
    assert.equal(meta.workload_status, '143');
  });
  test('a failing start reports the error in meta and still ends the frames', () => {
    const t: GuestTracer = { ...fake(['true']), start: ['false'] } as GuestTracer;
    const r = drive(t, {});
    assert.ok(r.frames.complete);
    assert.match(parseMeta(r.frames.files.get('meta')!.toString()).error ?? '', /failed/);
  });
});

describe('parseFrames', () => {
  const frame = (name: string, data: Buffer) =>
    Buffer.concat([
      Buffer.from(`${FRAME_PREFIX}file name=${name} bytes=${data.length}\n`),
      data,
      Buffer.from('\n'),
    ]);
  test('any bytes round-trip, whatever they contain', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 50 }), (a, b) => {
        const buf = Buffer.concat([
          Buffer.from('noise before\n'),
          frame('out', Buffer.from(a)),
          frame('err', Buffer.from(b)),
          Buffer.from(`${FRAME_PREFIX}end\n`),
        ]);
        const f = parseFrames(buf);
        assert.ok(f.complete);
        assert.deepEqual(f.files.get('out'), Buffer.from(a));
        assert.deepEqual(f.files.get('err'), Buffer.from(b));
      }),
    );
  });
  test('a frame cut short (the VM panicked mid-send) does not throw: what arrived, marked incomplete', () => {
    const whole = frame('out', Buffer.from('0123456789'));
    const cut = parseFrames(
      Buffer.concat([frame('meta', Buffer.from('a=1\n')), whole.subarray(0, whole.length - 5)]),
    );
    assert.equal(cut.complete, false);
    assert.match(cut.problem ?? '', /out was cut short \(6 of 10 bytes\)/);
    assert.equal(cut.files.get('out')?.toString(), '012345');
    assert.equal(cut.files.get('meta')?.toString(), 'a=1\n');
    assert.equal(parseFrames(whole).complete, false);
    const bogus = parseFrames(Buffer.from(`${FRAME_PREFIX}bogus\n`));
    assert.equal(bogus.complete, false);
    assert.match(bogus.problem ?? '', /bogus/);
    for (let n = 0; n <= whole.length; n++) parseFrames(whole.subarray(0, n));
  });
});
