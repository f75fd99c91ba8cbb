import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  bucketLabel,
  formatLog2Hist,
  type Log2Hist,
  parseBpftraceOutput,
  parseFtraceHist,
  parseLog2Hists,
} from '../../src/trace/histogram.js';
import { assertKjxError } from '../helpers/kjx-error.js';

/** Assert `fn` throws TRACE_PARSE at `source:line` quoting `text`. */
function throwsAt(fn: () => unknown, source: string, line: number, text: string): void {
  assert.throws(fn, (e: unknown) => {
    assertKjxError(e, 'TRACE_PARSE');
    assert.ok(e.message.startsWith(`${source}:${line}: `), e.message);
    assert.ok(e.message.includes(JSON.stringify(text)), e.message);
    assert.equal(e.position?.line, line);
    return true;
  });
}

// runqlat -P as it prints on SIGINT (banner, ^C, one histogram per process)
const RUNQLAT = `Tracing run queue latency... Hit Ctrl-C to end.
^C

pid = 0 swapper/0
     usecs               : count    distribution
         0 -> 1          : 10       |**********                              |
         2 -> 3          : 40       |****************************************|
         4 -> 7          : 20       |********************                    |
         8 -> 15         : 5        |*****                                   |
        16 -> 31         : 1        |*                                       |

pid = 412 sshd
     usecs               : count    distribution
         0 -> 1          : 0        |                                        |
         2 -> 3          : 3        |****************************************|
`;

describe('libbpf-tools histograms', () => {
  test('runqlat -P: one histogram per process, labelled, banner skipped', () => {
    const hs = parseLog2Hists(RUNQLAT, 'runqlat.txt');
    assert.equal(hs.length, 2);
    assert.deepEqual(hs[0], {
      unit: 'usecs',
      label: 'pid = 0 swapper/0',
      buckets: [
        { low: 0, high: 1, count: 10 },
        { low: 2, high: 3, count: 40 },
        { low: 4, high: 7, count: 20 },
        { low: 8, high: 15, count: 5 },
        { low: 16, high: 31, count: 1 },
      ],
    });
    assert.equal(hs[1]!.label, 'pid = 412 sshd');
    assert.deepEqual(
      hs[1]!.buckets.map((b) => b.count),
      [0, 3],
    );
  });

  test('formatLog2Hist prints the libbpf-tools layout byte for byte', () => {
    const [first, second] = parseLog2Hists(RUNQLAT);
    const expected = RUNQLAT.split('\n').slice(3).join('\n');
    assert.equal(`${formatLog2Hist(first!)}\n${formatLog2Hist(second!)}`, expected);
  });

  test('bars are floor(count * 40 / max) stars, as print_stars() computes them', () => {
    // 233 * 40 / 742 = 12.56 -> 12; 203 -> 10.94 -> 10; 3 -> 0.16 -> 0
    const text = [
      '     usecs               : count    distribution',
      '         0 -> 1          : 233      |************                            |',
      '         2 -> 3          : 742      |****************************************|',
      '         4 -> 7          : 203      |**********                              |',
      '         8 -> 15         : 173      |*********                               |',
      '        16 -> 31         : 24       |*                                       |',
      '        32 -> 63         : 3        |                                        |',
      '',
    ].join('\n');
    const [h] = parseLog2Hists(text);
    assert.equal(formatLog2Hist(h!), text);
  });

  test('biolatency -D -F: "disk = vda<TAB>" and "flags = ..." lines label the next histogram', () => {
    const text = `
disk = vda\t
flags = Sync-Write
     msecs               : count    distribution
         0 -> 1          : 18       |****************************************|
         2 -> 3          : 4        |********                                |

disk = vdb\t
     msecs               : count    distribution
         0 -> 1          : 1        |****************************************|
`;
    const hs = parseLog2Hists(text);
    assert.deepEqual(
      hs.map((h) => [h.unit, h.label]),
      [
        ['msecs', 'disk = vda, flags = Sync-Write'],
        ['msecs', 'disk = vdb'],
      ],
    );
  });

  test('more than 33 buckets: the wide layout (20-digit columns, 20 stars) reads and prints', () => {
    const h: Log2Hist = {
      unit: 'nsecs',
      buckets: Array.from({ length: 36 }, (_, i) => ({
        low: i === 0 ? 0 : 2 ** i,
        high: 2 ** (i + 1) - 1,
        count: i === 35 ? 8 : i % 3,
      })),
    };
    const text = formatLog2Hist(h);
    const lines = text.split('\n');
    assert.equal(lines[0], `${' '.repeat(15)}nsecs${' '.repeat(24)} : count    distribution`);
    assert.equal(
      lines[36],
      `${'34359738368'.padStart(20)} -> ${'68719476735'.padEnd(20)} : 8        |${'*'.repeat(20)}|`,
    );
    assert.deepEqual(parseLog2Hists(text), [h]);
  });

  test('print_linear_hist output: buckets as wide as the step between bases', () => {
    // libbpf-tools prints no row for an empty bucket (20 here)
    const text = `     msecs         : count     distribution
        0          : 5        |****************************************|
        10         : 2        |****************                        |
        30         : 1        |********                                |
`;
    assert.deepEqual(parseLog2Hists(text)[0]!.buckets, [
      { low: 0, high: 9, count: 5 },
      { low: 10, high: 19, count: 2 },
      { low: 20, high: 29, count: 0 },
      { low: 30, high: 39, count: 1 },
    ]);
  });

  test('print_linear_hist skips empty buckets: the step is the GCD of the gaps, not the first gap', () => {
    const text = `     usecs         : count     distribution
        100        : 3        |****************************************|
        300        : 1        |*************                           |
        400        : 2        |**************************              |
`;
    assert.deepEqual(parseLog2Hists(text)[0]!.buckets, [
      { low: 100, high: 199, count: 3 },
      { low: 200, high: 299, count: 0 },
      { low: 300, high: 399, count: 1 },
      { low: 400, high: 499, count: 2 },
    ]);
  });

  test('linear rows out of order are an error; rows far apart are not filled out to a billion buckets', () => {
    const rows = (lows: number[]) =>
      `     usecs         : count     distribution\n${lows.map((l) => `        ${l}        : 1        |*|`).join('\n')}\n`;
    assert.throws(() => parseLog2Hists(rows([300, 100, 200])), /input:3: histogram bucket out of order/);
    const far = parseLog2Hists(rows([0, 1, 1_000_000_000]))[0]!.buckets;
    assert.equal(far.length, 3);
  });

  test('an all-empty histogram prints nothing, as libbpf-tools does', () => {
    assert.equal(formatLog2Hist({ unit: 'usecs', buckets: [{ low: 0, high: 1, count: 0 }] }), '');
  });

  test('bucket labels: "0 -> 1", open ends as "..."', () => {
    assert.equal(bucketLabel({ low: 0, high: 1 }), '0 -> 1');
    assert.equal(bucketLabel({ low: Number.NEGATIVE_INFINITY, high: -1 }), '... -> -1');
    assert.equal(bucketLabel({ low: 100, high: Number.POSITIVE_INFINITY }), '100 -> ...');
  });

  test('a broken bucket row is TRACE_PARSE at its line', () => {
    const text = RUNQLAT.replace('         4 -> 7          : 20 ', '         4 -> 7          : x2 ');
    throwsAt(
      () => parseLog2Hists(text, 'runqlat.txt'),
      'runqlat.txt',
      8,
      '         4 -> 7          : x2       |********************                    |',
    );
  });

  test('a bucket row without a header, buckets out of order, a header without buckets', () => {
    throwsAt(
      () => parseLog2Hists('         0 -> 1          : 3        |*|\n', 'a'),
      'a',
      1,
      '         0 -> 1          : 3        |*|',
    );
    const swapped = '     usecs : count    distribution\n  4 -> 7 : 1 |*|\n  2 -> 3 : 1 |*|\n';
    throwsAt(() => parseLog2Hists(swapped, 'b'), 'b', 3, '  2 -> 3 : 1 |*|');
    throwsAt(() => parseLog2Hists('     usecs : count    distribution\n\n', 'c'), 'c', 2, '');
  });

  const label = fc
    .tuple(
      fc.stringMatching(/^[a-z]{1,6}$/),
      fc.stringMatching(/^[A-Za-z0-9/_-][A-Za-z0-9 /_:-]{0,14}[A-Za-z0-9]$/),
    )
    .map(([k, v]) => `${k} = ${v}`);
  const hist: fc.Arbitrary<Log2Hist> = fc
    .record({
      unit: fc.stringMatching(/^[a-z]{1,12}$/),
      counts: fc.array(fc.nat({ max: 10_000_000 }), { minLength: 0, maxLength: 45 }),
      last: fc.integer({ min: 1, max: 10_000_000 }),
      label: fc.option(label, { nil: undefined }),
    })
    .map(({ unit, counts, last, label }) => {
      const h: Log2Hist = {
        unit,
        buckets: [...counts, last].map((count, i) => ({
          low: i === 0 ? 0 : 2 ** i,
          high: 2 ** (i + 1) - 1,
          count,
        })),
      };
      if (label !== undefined) h.label = label;
      return h;
    });

  test('property: parseLog2Hists(formatLog2Hist(h)) gives h back, also several in a row', () => {
    fc.assert(
      fc.property(fc.array(hist, { minLength: 1, maxLength: 3 }), (hs) => {
        const text = hs.map(formatLog2Hist).join('\n');
        assert.deepEqual(parseLog2Hists(text), hs);
      }),
      { numRuns: 200 },
    );
  });

  test('property: star bars are 40 (or 20) wide and the largest bucket fills them', () => {
    fc.assert(
      fc.property(hist, (h) => {
        const rows = formatLog2Hist(h)
          .trimEnd()
          .split('\n')
          .slice(h.label ? 2 : 1);
        const wide = h.buckets.length > 33;
        const bars = rows.map((r) => r.slice(r.indexOf('|') + 1, -1));
        for (const b of bars) assert.equal(b.length, wide ? 20 : 40);
        const max = Math.max(...h.buckets.map((b) => b.count));
        const i = h.buckets.findIndex((b) => b.count === max);
        assert.equal(bars[i], '*'.repeat(wide ? 20 : 40));
      }),
    );
  });
});

const BPFTRACE = `Attaching 3 probes...
^C

@bytes:
[0]                    2 |@                                                   |
[1]                    0 |                                                    |
[2, 4)                 7 |@@@@                                                |
[4, 8)                 1 |                                                    |
[4K, 8K)              85 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[8K, 16K)              3 |@                                                   |

@lat:
(..., 0)               1 |@@@@@                                               |
[0, 10)               10 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[10, 20)               3 |@@@@@@@@@@@@@@@                                     |
[100, ...)             2 |@@@@@@@@@@                                          |

@syscalls[read]: 1034
@syscalls[write]: 12
@total: 1046
@st: count 3, average 5, total 15
@comm[412]: sshd

@usecs[sshd, 412]:
[1M, 2M)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
`;

describe('bpftrace output', () => {
  test('hist(), lhist(), keyed hists and scalar maps', () => {
    const r = parseBpftraceOutput(BPFTRACE, 'trace.bt.out');
    assert.deepEqual(
      r.map((x) => [x.kind, x.name]),
      [
        ['hist', 'bytes'],
        ['hist', 'lat'],
        ['map', 'syscalls'],
        ['map', 'total'],
        ['map', 'st'],
        ['map', 'comm'],
        ['hist', 'usecs'],
      ],
    );
    const bytes = r[0]!;
    assert.ok(bytes.kind === 'hist');
    assert.deepEqual(bytes.hist, {
      unit: 'bytes',
      buckets: [
        { low: 0, high: 0, count: 2 },
        { low: 1, high: 1, count: 0 },
        { low: 2, high: 3, count: 7 },
        { low: 4, high: 7, count: 1 },
        { low: 4096, high: 8191, count: 85 },
        { low: 8192, high: 16383, count: 3 },
      ],
    });
    const lat = r[1]!;
    assert.ok(lat.kind === 'hist');
    assert.deepEqual(lat.hist.buckets, [
      { low: Number.NEGATIVE_INFINITY, high: -1, count: 1 },
      { low: 0, high: 9, count: 10 },
      { low: 10, high: 19, count: 3 },
      { low: 100, high: Number.POSITIVE_INFINITY, count: 2 },
    ]);
    assert.deepEqual(r[2], {
      kind: 'map',
      name: 'syscalls',
      entries: [
        { key: 'read', value: 1034 },
        { key: 'write', value: 12 },
      ],
    });
    assert.deepEqual(r[3], { kind: 'map', name: 'total', entries: [{ key: '', value: 1046 }] });
    assert.deepEqual(r[4], {
      kind: 'map',
      name: 'st',
      entries: [{ key: '', value: 'count 3, average 5, total 15' }],
    });
    assert.deepEqual(r[5], { kind: 'map', name: 'comm', entries: [{ key: '412', value: 'sshd' }] });
    const keyed = r[6]!;
    assert.ok(keyed.kind === 'hist');
    assert.equal(keyed.key, 'sshd, 412');
    assert.equal(keyed.hist.label, 'sshd, 412');
    assert.deepEqual(keyed.hist.buckets, [{ low: 2 ** 20, high: 2 ** 21 - 1, count: 1 }]);
  });

  test('an unnamed map (@[comm]) has the name ""', () => {
    assert.deepEqual(parseBpftraceOutput('@[sshd]: 3\n@[runsv]: 1\n'), [
      {
        kind: 'map',
        name: '',
        entries: [
          { key: 'sshd', value: 3 },
          { key: 'runsv', value: 1 },
        ],
      },
    ]);
  });

  test('a broken histogram row or map line is TRACE_PARSE at its line', () => {
    const broken = BPFTRACE.replace('[2, 4)                 7', '[2, 4x                 7');
    throwsAt(
      () => parseBpftraceOutput(broken, 'bt'),
      'bt',
      7,
      '[2, 4x                 7 |@@@@                                                |',
    );
    throwsAt(() => parseBpftraceOutput('x\n@@weird\n', 'bt'), 'bt', 2, '@@weird');
  });

  test('stack keys (`@[` alone, a frame per line, `]: 5`) are joined, not a parse error', () => {
    const text = [
      'Attaching 1 probe...',
      '@[',
      '        do_syscall_64+56',
      '        entry_SYSCALL_64_after_hwframe+100',
      ']: 5',
      '@[',
      '        ksys_read+10',
      ', cat]: 2',
      '',
    ].join('\n');
    assert.deepEqual(parseBpftraceOutput(text, 'bt'), [
      {
        kind: 'map',
        name: '',
        entries: [
          { key: 'do_syscall_64+56;entry_SYSCALL_64_after_hwframe+100', value: 5 },
          { key: 'ksys_read+10;, cat', value: 2 },
        ],
      },
    ]);
  });

  test('printf lines starting with @ are skipped when maps parse; nothing parsing is an error', () => {
    const r = parseBpftraceOutput('@@ start of trace\n@ x=1 @\n@calls: 3\n', 'bt');
    assert.deepEqual(r, [{ kind: 'map', name: 'calls', entries: [{ key: '', value: 3 }] }]);
  });
});

describe('tracefs hist triggers', () => {
  test('per-process hitcounts with the trigger and Totals', () => {
    const text = `# event histogram
#
# trigger info: hist:keys=common_pid.execname:vals=hitcount:sort=hitcount:size=2048 [active]
#

{ common_pid: bash            [       915] } hitcount:          1
{ common_pid: sshd            [       880] } hitcount:          3
{ common_pid: kworker/0:1     [        20] } hitcount:         12

Totals:
    Hits: 16
    Entries: 3
    Dropped: 0
`;
    const [h, ...rest] = parseFtraceHist(text);
    assert.equal(rest.length, 0);
    assert.equal(h!.trigger, 'hist:keys=common_pid.execname:vals=hitcount:sort=hitcount:size=2048 [active]');
    assert.deepEqual(h!.entries, [
      { key: { common_pid: 'bash [ 915]' }, values: { hitcount: 1 } },
      { key: { common_pid: 'sshd [ 880]' }, values: { hitcount: 3 } },
      { key: { common_pid: 'kworker/0:1 [ 20]' }, values: { hitcount: 12 } },
    ]);
    assert.deepEqual(h!.totals, { hits: 16, entries: 3, dropped: 0 });
    assert.equal(h!.hist, undefined);
  });

  test('.log2 keys become a histogram with the empty buckets filled in', () => {
    const text = `# trigger info: hist:keys=bytes_req.log2:vals=hitcount:sort=bytes_req.log2:size=2048 [active]

{ bytes_req: ~ 2^7  } hitcount:          2
{ bytes_req: ~ 2^3  } hitcount:          5
{ bytes_req: ~ 2^4  } hitcount:         12

Totals:
    Hits: 19
    Entries: 3
    Dropped: 0
`;
    assert.deepEqual(parseFtraceHist(text)[0]!.hist, {
      unit: 'bytes_req',
      buckets: [
        { low: 5, high: 8, count: 5 },
        { low: 9, high: 16, count: 12 },
        { low: 17, high: 32, count: 0 },
        { low: 33, high: 64, count: 0 },
        { low: 65, high: 128, count: 2 },
      ],
    });
  });

  test('.buckets=100 keys become a linear histogram', () => {
    const text = '{ lat: ~ 200-299 } hitcount: 1\n{ lat: ~ 0-99 } hitcount: 3\n';
    assert.deepEqual(parseFtraceHist(text)[0]!.hist?.buckets, [
      { low: 0, high: 99, count: 3 },
      { low: 100, high: 199, count: 0 },
      { low: 200, high: 299, count: 1 },
    ]);
  });

  test('several keys, several values, a stacktrace key over several lines, two triggers', () => {
    const text = `# trigger info: hist:keys=call_site.sym,bytes_req:vals=hitcount,bytes_alloc [active]
{ call_site: [ffffffffa02b1c4d] i915_gem_do_execbuffer [i915], bytes_req: 40 } hitcount:          7  bytes_alloc:        448

# trigger info: hist:keys=stacktrace:vals=hitcount [active]
{ stacktrace:
         _do_fork+0x18e/0x330
         kernel_thread+0x29/0x30
         ret_from_fork+0x3f/0x70
} hitcount:          3
`;
    const hs = parseFtraceHist(text, 'hist');
    assert.equal(hs.length, 2);
    assert.deepEqual(hs[0]!.entries, [
      {
        key: { call_site: '[ffffffffa02b1c4d] i915_gem_do_execbuffer [i915]', bytes_req: '40' },
        values: { hitcount: 7, bytes_alloc: 448 },
      },
    ]);
    assert.deepEqual(hs[1]!.entries, [
      {
        key: { stacktrace: '_do_fork+0x18e/0x330 kernel_thread+0x29/0x30 ret_from_fork+0x3f/0x70' },
        values: { hitcount: 3 },
      },
    ]);
  });

  test('text that is not a hist file is TRACE_PARSE at its line', () => {
    throwsAt(
      () => parseFtraceHist('# comment\n{ pid: 1 } hitcount: 2\nsomething else\n', 'hist'),
      'hist',
      3,
      'something else',
    );
    throwsAt(() => parseFtraceHist('{ pid: 1 } nothing\n', 'hist'), 'hist', 1, '{ pid: 1 } nothing');
  });
});
