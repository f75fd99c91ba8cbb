import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { bucketLabel, type Log2Hist } from '../../src/trace/histogram.js';
import { histogramSvg } from '../../src/trace/svg-histogram.js';
import { sampleHist } from './fixtures.js';
import { allElements, parseXml, textOf } from './xml-check.js';

function texts(svg: string): string[] {
  return allElements(parseXml(svg))
    .filter((e) => e.name === 'text')
    .map(textOf);
}

describe('histogramSvg', () => {
  test('every bucket label, every count, the unit and the label are written as text', () => {
    const h = sampleHist();
    const svg = histogramSvg(h, { title: 'run queue latency' });
    const t = texts(svg);
    assert.ok(t.includes('run queue latency'));
    assert.ok(t.includes('pid = 412 sshd'));
    assert.ok(t.includes('usecs'));
    assert.ok(t.includes('count per bucket of usecs'));
    for (const b of h.buckets) {
      assert.ok(t.includes(bucketLabel(b)), bucketLabel(b));
      assert.ok(t.includes(String(b.count)));
    }
    assert.ok(t.includes('0 -> 1') && t.includes('16384 -> 32767'));
  });

  test('one bar per bucket, in bucket order, as long as its count says; tooltips with the share', () => {
    const h = sampleHist();
    const groups = allElements(parseXml(histogramSvg(h, { title: 't' }))).filter(
      (e) => e.attrs.class === 'b',
    );
    assert.equal(groups.length, h.buckets.length);
    const widths = groups.map((g) => Number(g.children.find((c) => c.name === 'rect')!.attrs.width));
    const max = Math.max(...h.buckets.map((b) => b.count));
    const unit = widths[h.buckets.findIndex((b) => b.count === max)]! / max;
    h.buckets.forEach((b, i) => {
      assert.ok(Math.abs(widths[i]! - b.count * unit) < 0.01);
    });
    const ys = groups.map((g) => Number(g.children.find((c) => c.name === 'rect')!.attrs.y));
    assert.deepEqual(
      ys,
      [...ys].sort((a, b) => a - b),
    );
    assert.equal(textOf(groups[5]!.children[0]!), '32 -> 63 usecs: 1021 (37.43%)');
  });

  test('open-ended bpftrace buckets and an empty histogram render', () => {
    const h: Log2Hist = {
      unit: 'lat',
      buckets: [
        { low: Number.NEGATIVE_INFINITY, high: -1, count: 1 },
        { low: 0, high: 9, count: 4 },
        { low: 100, high: Number.POSITIVE_INFINITY, count: 2 },
      ],
    };
    const t = texts(histogramSvg(h, { title: 'x' }));
    assert.ok(t.includes('... -> -1') && t.includes('100 -> ...'));
    assert.ok(texts(histogramSvg({ unit: 'usecs', buckets: [] }, { title: 'x' })).includes('no data'));
  });

  test('deterministic, and hostile units, labels and titles are escaped', () => {
    const h: Log2Hist = {
      unit: '<us>&',
      label: '"pid" = 1 </svg>',
      buckets: [{ low: 0, high: 1, count: 3 }],
    };
    const svg = histogramSvg(h, { title: ']]> & <b>' });
    assert.equal(histogramSvg(h, { title: ']]> & <b>' }), svg);
    const t = texts(svg);
    assert.ok(t.includes(']]> & <b>') && t.includes('"pid" = 1 </svg>') && t.includes('<us>&'));
  });

  test('property: well-formed for any histogram, one bar per bucket', () => {
    const hist = fc.record({
      unit: fc.string({ minLength: 1, maxLength: 8 }),
      buckets: fc.array(fc.record({ low: fc.nat(), high: fc.nat(), count: fc.nat({ max: 1e9 }) }), {
        maxLength: 40,
      }),
    });
    fc.assert(
      fc.property(hist, fc.string(), (h, title) => {
        const root = parseXml(histogramSvg(h, { title }));
        assert.equal(allElements(root).filter((e) => e.attrs.class === 'b').length, h.buckets.length);
      }),
    );
  });
});
