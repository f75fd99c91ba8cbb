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
import { programBtf } from '../fixtures/btf-fixtures.js';
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

  test("a program: maps.json through BTF, the table, counters, events, and a C loader's own output first", () => {
    const out = dir();
    const { btf, ids } = programBtf();
    const key = Buffer.alloc(20);
    key.writeUInt32LE(42);
    key.write('cat', 4);
    const bss = Buffer.alloc(24);
    bss.writeBigUInt64LE(7n);
    const entry = (k: Buffer, v: Buffer) => [k.toString('hex'), v.toString('hex')];
    const maps = JSON.stringify({
      type: 'maps',
      maps: [
        {
          name: 'counts',
          id: 1,
          type: 'hash',
          key_size: 20,
          value_size: 8,
          max_entries: 64,
          btf_id: 3,
          btf_key_type_id: ids.key,
          btf_value_type_id: ids.u64,
          entries: [entry(key, Buffer.from('0500000000000000', 'hex'))],
          truncated: false,
        },
        {
          name: 'top.bss',
          id: 2,
          type: 'array',
          key_size: 4,
          value_size: 24,
          max_entries: 1,
          btf_id: 3,
          btf_key_type_id: 0,
          btf_value_type_id: ids.bss,
          entries: [entry(Buffer.alloc(4), bss)],
          truncated: false,
        },
      ],
      btf: { 3: btf.toString('hex') },
    });
    const plan = planTracer(
      { tracer: 'prog', arg: 'top' },
      { components: [], libbpfTools: [], programs: [{ name: 'top', loader: 'c' }] },
    );
    const r = renderTrace(
      out,
      plan,
      frames({
        out: 'PID COMM COUNT\n42 cat 5\n',
        err: '',
        maps: `${maps}\n`,
        meta: 'tracer=prog\nt_start=1\nt_attached=2\nt_workload_end=3\n',
      }),
      { target: {} },
    );
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'maps.json'), 'utf8')), {
      counts: [{ key: { pid: 42, comm: 'cat' }, value: 5 }],
      '.bss': { total: 7, lat_hist: [0, 0, 0, 0] },
    });
    assert.deepEqual(r.summary.counters, { total: 7 });
    assert.deepEqual(r.summary.maps, { counts: { type: 'hash', entries: 1 }, '.bss': { type: 'array' } });
    assert.deepEqual(r.summary.top, [{ pid: 42, comm: 'cat', value: 5 }]);
    assert.ok(r.text.startsWith('PID COMM COUNT\n42 cat 5'), r.text);
    assert.match(r.text, /^total = 7$/m);
    // a re-run into the same -o DIR is allowed: maps.json is one of kjx's files
    prepareOutputDir(out);
  });

  test('a program the verifier rejects: BPF_VERIFIER at its source line, the whole log kept', () => {
    const out = dir();
    const plan = planTracer(
      { tracer: 'prog', arg: 'bad' },
      { components: [], libbpfTools: [], programs: [{ name: 'bad', loader: 'generic' }] },
    );
    const err = [
      "libbpf: prog 'on_enter': -- BEGIN PROG LOAD LOG --",
      '; *v += 1;',
      '8: (79) r1 = *(u64 *)(r0 +0)',
      "R0 invalid mem access 'map_value_or_null'",
      'processed 8 insns (limit 1000000)',
      '-- END PROG LOAD LOG --',
      '',
    ].join('\n');
    assert.throws(
      () =>
        renderTrace(
          out,
          plan,
          frames({ out: '', err, meta: 'error=/usr/sbin/kjx-prog exited before it attached\n' }),
          {
            target: {},
            sources: [{ file: './bad.bpf.c', text: 'int x;\n  *v += 1;\n' }],
          },
        ),
      kjxError('BPF_VERIFIER', {
        message:
          "program bad: the kernel's verifier rejected on_enter():\n./bad.bpf.c:2: *v += 1;\n8: (79) r1 = *(u64 *)(r0 +0)\nR0 invalid mem access 'map_value_or_null'",
        hint: /the whole verifier log \(4 lines\) is in .*prog\.stderr\.txt/,
      }),
    );
    assert.equal(readFileSync(join(out, 'prog.stderr.txt'), 'utf8'), err);
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
