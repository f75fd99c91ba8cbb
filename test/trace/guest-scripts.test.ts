/**
 * The guest-side driver of `kjx trace` and its framing: generated scripts parse
 * (sh -n), a driver runs for real on the host with stand-in start/stop commands and
 * its framed output reads back, the --duration limit stops a workload, and frames
 * cut short are errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseFrames, parseMeta } from '../../src/trace/collect.js';
import { ftraceHelperScript } from '../../src/trace/ftrace-helper.js';
import { bpfReadyScript, FRAME_PREFIX, traceDriverScript } from '../../src/trace/guest-scripts.js';
import { type GuestTracer, planTracer } from '../../src/trace/tracers.js';

const shOk = (script: string) => {
  const r = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
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
  const r = spawnSync('sh', ['-c', traceDriverScript(t, o)], { timeout: 2 * BOUND_MS });
  return {
    frames: parseFrames(r.stdout),
    stderr: r.stderr.toString(),
    status: r.status,
    ms: performance.now() - t0,
  };
}

describe('generated scripts', () => {
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
  test('a BPF tool is stopped with SIGINT and waited for; the workload runs in its own session', () => {
    const s = traceDriverScript(planTracer({ tracer: 'offcpu' }, tools), { workload: ['sleep', '1'] });
    assert.match(s, /^offcputime >"\$D\/out" 2>"\$D\/err" <\/dev\/null 3>&- &$/m);
    assert.match(s, /^kill -INT \$tp$/m);
    assert.match(s, /^setsid sleep 1 <\/dev\/null 3>&- &$/m);
    assert.match(s, /^exec 3>&1 1>&2$/m);
  });
});

test("a program with its own loader: kjx-bpf-run dumps the loader's maps before SIGINT, and they are shipped", () => {
  const plan = planTracer(
    { tracer: 'prog', arg: 'top' },
    { components: [], libbpfTools: [], programs: [{ name: 'top', loader: 'c' }] },
  );
  const s = traceDriverScript(plan, { workload: ['true'] });
  const dump = s.indexOf('/usr/sbin/kjx-bpf-run --dump-maps $tp >"$D/maps"');
  assert.ok(dump > 0 && dump < s.indexOf('kill -INT $tp'), s);
  assert.match(s, /\[ -f "\$D\/maps" \] && emit maps;/);
  // as a service: the pid runsv recorded (the wrapper, or the loader itself) and what runs under it
  const svc = traceDriverScript(
    planTracer(
      { tracer: 'service', arg: 'hs', serviceRun: 'kjx-prog hs' },
      { components: [], libbpfTools: [] },
    ),
    {},
  );
  assert.ok(
    svc.indexOf(
      'read -r kjx_sp </etc/service/hs/supervise/pid && /usr/sbin/kjx-bpf-run --dump-maps "$kjx_sp"',
    ) < svc.indexOf('sv down'),
  );
});

test('an ephemeral VM keeps its tracefs state at stop (it powers off); a detached one gets it undone', () => {
  const plan = planTracer({ tracer: 'funccount', arg: 'vfs_*' }, { components: ['ftrace'], libbpfTools: [] });
  assert.match(
    traceDriverScript(plan, { ephemeral: true }),
    /^\/usr\/sbin\/kjx-ftrace stop funccount --keep >/m,
  );
  assert.match(traceDriverScript(plan, {}), /^\/usr\/sbin\/kjx-ftrace stop funccount >/m);
});

describe('the driver, run on the host', () => {
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
      const child = spawnSync(
        'sh',
        [
          '-c',
          `sh -c '${script.replace(/'/g, "'\\''")}' & p=$!
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
      /\$T\/tracing_on|>\s*\$T\/trace\b/,
      'the global buffer and tracing_on are not touched',
    );
    assert.match(h, /^I=\$T\/instances\/kjx-exec$/m);
    const start = h.slice(h.indexOf('funccount_start() {'), h.indexOf('funccount_stop() {'));
    assert.match(start, /^ {2}probes_clear$/m);
    assert.match(
      start,
      /trigger \|\| \{ echo "-:kjx\/fc\$n" >>\$T\/kprobe_events/,
      'a probe whose trigger failed is removed',
    );
    assert.match(start, /restore; die "no traceable/);
    assert.match(start, /fns=\$\(cat \$T\/set_ftrace_filter\)\n {2}restore$/m);
  });
  test('funccount/syscalls triggers leave out the driver (its uptime reads are not counted)', () => {
    const plan = planTracer(
      { tracer: 'funccount', arg: 'vfs_read' },
      { components: ['ftrace'], libbpfTools: [] },
    );
    const s = traceDriverScript(plan, { workload: ['true'] });
    assert.match(s, /^KJX_FTRACE_EXCLUDE_PID=\$\$ \/usr\/sbin\/kjx-ftrace start funccount vfs_read /m);
    assert.doesNotMatch(s, /\$\(up\)/, 'no subshell (another pid) reads /proc/uptime');
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
