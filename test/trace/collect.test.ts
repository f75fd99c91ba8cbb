/** Writing a trace's results: files, summary.json, the printed text, and failures that keep the raw output. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type Frames, renderTrace } from '../../src/trace/collect.js';
import { planTracer } from '../../src/trace/tracers.js';
import { isKjxError } from '../../src/util/errors.js';

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
      (e) =>
        isKjxError(e) &&
        e.code === 'TRACE_FAILED' &&
        /exited before it attached/.test(e.message) &&
        /failed to load BPF skeleton/.test(e.hint ?? ''),
    );
    assert.ok(existsSync(join(out, 'offcpu.stderr.txt')));
    assert.match(
      readFileSync(join(out, 'summary.json'), 'utf8'),
      /"error": "offcputime exited before it attached"/,
    );
  });

  test('nothing came back: TRACE_FAILED', () => {
    assert.throws(
      () => renderTrace(dir(), planTracer({ tracer: 'runqlat' }, tools), frames({}, false), { target: {} }),
      (e) => isKjxError(e) && /sent no results/.test(e.message),
    );
  });
});
