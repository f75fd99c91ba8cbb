/**
 * The guest-side driver of `kjx trace` and its framing: generated scripts parse
 * (sh -n), a driver runs for real on the host with stand-in start/stop commands and
 * its framed output reads back, the --duration limit stops a workload, and frames
 * cut short are errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseFrames, parseMeta } from '../../src/trace/collect.js';
import { ftraceHelperScript } from '../../src/trace/ftrace-helper.js';
import { bpfReadyScript, FRAME_PREFIX, traceDriverScript } from '../../src/trace/guest-scripts.js';
import { type GuestTracer, planTracer } from '../../src/trace/tracers.js';
import { isKjxError } from '../../src/util/errors.js';

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

function drive(t: GuestTracer, o: Parameters<typeof traceDriverScript>[1]) {
  const r = spawnSync('sh', ['-c', traceDriverScript(t, o)], { timeout: 20_000 });
  return { frames: parseFrames(r.stdout), stderr: r.stderr.toString(), status: r.status };
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
    ] as const) {
      const plan = planTracer(req, tools);
      shOk(traceDriverScript(plan, { workload: ['sh', '-c', "echo 'quoted; $x'"], durationS: 3 }));
      shOk(traceDriverScript(plan, {}));
    }
    shOk(ftraceHelperScript());
    shOk(bpfReadyScript());
  });
  test('a BPF tool is stopped with SIGINT and waited for; the workload runs in its own session', () => {
    const s = traceDriverScript(planTracer({ tracer: 'offcpu' }, tools), { workload: ['sleep', '1'] });
    assert.match(s, /^offcputime >"\$D\/out" 2>"\$D\/err" <\/dev\/null &$/m);
    assert.match(s, /^kill -INT \$tp$/m);
    assert.match(s, /^setsid sleep 1 <\/dev\/null &$/m);
    assert.match(s, /^exec 3>&1 1>&2$/m);
  });
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
  test('--duration stops a workload that runs longer, with all its processes', () => {
    const t0 = performance.now();
    const r = drive(fake(['true']), { workload: ['sh', '-c', 'sleep 30 & sleep 30; wait'], durationS: 1 });
    assert.ok(performance.now() - t0 < 10_000, 'the workload was not stopped');
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
  test('a frame cut short is an error naming the file; no end frame is incomplete', () => {
    const whole = frame('out', Buffer.from('0123456789'));
    assert.throws(
      () => parseFrames(whole.subarray(0, whole.length - 5)),
      (e) => isKjxError(e) && /out was cut short/.test(e.message),
    );
    assert.equal(parseFrames(whole).complete, false);
    assert.throws(
      () => parseFrames(Buffer.from(`${FRAME_PREFIX}bogus\n`)),
      (e) => isKjxError(e) && e.code === 'TRACE_PARSE',
    );
  });
});
