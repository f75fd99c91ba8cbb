/** Writing a trace's results: files, summary.json, the printed text, and failures that keep the raw output. */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  claimTraceDir,
  type Frames,
  prepareOutputDir,
  renderTrace,
  runOutcomeError,
} from '../../src/trace/collect.js';
import { planTracer } from '../../src/trace/tracers.js';
import { assertKjxError, kjxError } from '../helpers/kjx-error.js';

const tools = { components: ['ftrace', 'libbpf-tools'], libbpfTools: ['runqlat', 'offcputime'] };
const frames = (files: Record<string, string>, complete = true): Frames => ({
  files: new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])),
  complete,
});
const RUNQLAT = `Tracing run queue latency... Hit Ctrl-C to end.

     usecs               : count    distribution
         0 -> 1          : 0        |                                        |
         2 -> 3          : 4        |****************************************|
         4 -> 7          : 2        |********************                    |
`;

describe('renderTrace', () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'kjx-trace-out-'));
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('a histogram: raw, text, SVG and summary.json; the text is what libbpf-tools prints', () => {
    const out = dir();
    const r = renderTrace(
      out,
      planTracer({ tracer: 'runqlat' }, tools),
      frames({
        out: RUNQLAT,
        err: '',
        meta: 'tracer=runqlat\nkernel=6.1.0\nt_start=1.00\nt_attached=2.50\nworkload_status=143\nworkload_killed=1\nt_workload_end=5.50\n',
      }),
      { target: { spec: '/p/kjx.yaml' }, workload: ['sh', '-c', 'x'], durationS: 3 },
    );
    assert.equal(r.summary.attachS, 1.5);
    assert.equal(r.summary.tracedS, 3);
    assert.deepEqual(r.summary.workload, { argv: ['sh', '-c', 'x'], status: 143, killedAfterDuration: true });
    assert.equal(r.summary.histograms?.[0]?.total, 6);
    assert.match(r.text, /^ {5}usecs {15}: count {4}distribution$/m);
    for (const f of ['runqlat.raw.txt', 'runqlat.hist.txt', 'runqlat.svg', 'summary.json'])
      assert.ok(existsSync(join(out, f)), f);
    assert.equal(r.summary.files.stderr, undefined, 'no stderr file when the tracer wrote none');
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')), r.summary);
  });

  test('an error reported by the guest: TRACE_FAILED with the tracer stderr, raw files kept', () => {
    const out = dir();
    assert.throws(
      () =>
        renderTrace(
          out,
          planTracer({ tracer: 'offcpu' }, tools),
          frames({
            out: '',
            err: 'libbpf: failed to load BPF skeleton\n',
            meta: 'error=offcputime exited before it attached\n',
          }),
          { target: {} },
        ),
      kjxError('TRACE_FAILED', { message: /exited before it attached/, hint: /failed to load BPF skeleton/ }),
    );
    assert.ok(existsSync(join(out, 'offcpu.stderr.txt')));
    assert.match(
      readFileSync(join(out, 'summary.json'), 'utf8'),
      /"error": "offcputime exited before it attached"/,
    );
  });

  test('the tracefs runqlat histogram is in usecs (the plan\'s unit), not "lat" (the key field)', () => {
    const hist = [
      '# event histogram',
      '# trigger info: hist:keys=lat.log2:vals=hitcount:sort=lat.log2:size=2048 [active]',
      '{ lat: ~ 2^1 } hitcount: 3',
      '{ lat: ~ 2^3 } hitcount: 1',
      '',
      'Totals:',
      '    Hits: 4',
      '    Entries: 2',
      '    Dropped: 0',
      '',
    ].join('\n');
    const r = renderTrace(
      dir(),
      planTracer({ tracer: 'runqlat', backend: 'tracefs' }, tools),
      frames({ out: hist, err: '', meta: '' }),
      { target: {} },
    );
    assert.equal(r.summary.histograms?.[0]?.unit, 'usecs');
    assert.match(r.text, /^ {5}usecs /m);
  });

  test('open-ended buckets are null in summary.json, on purpose', () => {
    const out = dir();
    const bt = planTracer(
      { tracer: 'bpftrace', program: 'x' },
      { components: ['bpftrace'], libbpfTools: [] },
    );
    const text =
      '@lat:\n(..., 0)               1 |@@@@                |\n[0, 10)               10 |@@@@@@@@@@@@@@@@@@@@|\n[10, ...)              2 |@@@@                |\n';
    const r = renderTrace(out, bt, frames({ out: text, err: '', meta: '' }), { target: {} });
    const json = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.deepEqual(json.histograms[0].buckets[0], { low: null, high: -1, count: 1 });
    assert.deepEqual(json.histograms[0].buckets.at(-1), { low: 10, high: null, count: 2 });
    assert.deepEqual(r.summary.histograms?.[0]?.buckets[0], { low: null, high: -1, count: 1 });
  });

  test('output that does not parse: summary.json with the error, TRACE_PARSE naming the absolute raw file', () => {
    const out = dir();
    assert.throws(
      () =>
        renderTrace(
          out,
          planTracer({ tracer: 'runqlat' }, tools),
          frames({ out: `${RUNQLAT}        8 -> 15 : x |\n`, err: '', meta: '' }),
          {
            target: {},
          },
        ),
      (e) => {
        assertKjxError(e, 'TRACE_PARSE', { cause: true });
        assert.ok(e.hint?.includes(join(out, 'runqlat.raw.txt')), e.hint);
        return true;
      },
    );
    assert.match(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')).error, /runqlat\.raw\.txt:\d+/);
  });

  test('nothing came back: TRACE_FAILED', () => {
    assert.throws(
      () => renderTrace(dir(), planTracer({ tracer: 'runqlat' }, tools), frames({}, false), { target: {} }),
      kjxError('TRACE_FAILED', /sent no results/),
    );
  });
});

describe('runOutcomeError', () => {
  const run = (outcome: 'exited' | 'panic' | 'timeout' | 'silence' | 'vm-failed') => ({
    outcome,
    message: outcome === 'panic' ? 'Kernel panic - not syncing: Oops' : 'the run did not finish',
    excerpt: 'last console line',
    phases: {},
    services: [],
    stateDir: '/s/run-1',
    accel: 'tcg' as const,
  });
  test('a panic while results were sent: GUEST_PANIC (exit 123) with the console, not a parse error', () => {
    const e = runOutcomeError('runqlat', run('panic'));
    assert.equal(e?.code, 'GUEST_PANIC');
    assert.match(e?.hint ?? '', /\/s\/run-1\/console\.log[\s\S]*last console line/);
  });
  test('a timeout is VM_TIMEOUT (exit 124); a run that exited is no error', () => {
    assert.equal(runOutcomeError('runqlat', run('timeout'))?.code, 'VM_TIMEOUT');
    assert.equal(runOutcomeError('runqlat', run('silence'))?.code, 'VM_TIMEOUT');
    assert.equal(runOutcomeError('runqlat', run('exited')), undefined);
  });
});

describe('output directories', () => {
  const root = mkdtempSync(join(tmpdir(), 'kjx-trace-dirs-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  test('two traces in the same second get two directories', () => {
    const base = join(root, '.kjx', 'traces', 'runqlat-20261126-010203');
    assert.equal(claimTraceDir(base), base);
    assert.equal(claimTraceDir(base), `${base}-2`);
    assert.equal(claimTraceDir(base), `${base}-3`);
  });
  test('-o DIR: empty or missing is fine; a previous trace dir is cleared; anything else is refused', () => {
    prepareOutputDir(join(root, 'missing'));
    const prev = join(root, 'prev');
    mkdirSync(prev);
    for (const f of ['summary.json', 'offcpu.folded', 'offcpu.svg', 'offcpu.raw.txt'])
      writeFileSync(join(prev, f), 'x');
    prepareOutputDir(prev);
    assert.deepEqual(readdirSync(prev), []);
    const other = join(root, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.md'), 'mine');
    assert.throws(() => prepareOutputDir(other), kjxError('USAGE', { hint: /notes\.md/ }));
    assert.ok(existsSync(join(other, 'notes.md')));
  });
});
