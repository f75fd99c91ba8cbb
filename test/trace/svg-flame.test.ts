import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { FoldedStack } from '../../src/trace/folded.js';
import { fitText, flameGraphSvg, frameColor } from '../../src/trace/svg-flame.js';
import { sampleStacks } from './fixtures.js';
import { allElements, parseXml, textOf, type XmlElement } from './xml-check.js';

/** The frames of a flame graph: name, tooltip, rectangle. */
function frames(svg: string) {
  return allElements(parseXml(svg))
    .filter((e) => e.name === 'g' && e.attrs.class === 'f')
    .map((g) => {
      const child = (n: string) => g.children.find((c) => c.name === n) as XmlElement;
      return {
        name: g.attrs['data-n']!,
        depth: Number(g.attrs['data-d']),
        title: textOf(child('title')),
        text: textOf(child('text')),
        x: Number(child('rect').attrs.x),
        width: Number(child('rect').attrs.width),
        fill: child('rect').attrs.fill!,
      };
    });
}

const STACKS: FoldedStack[] = [
  { frames: ['sshd', 'main', 'read'], count: 30 },
  { frames: ['sshd', 'main', 'write'], count: 10 },
  { frames: ['runsv', 'poll'], count: 60 },
];

describe('flameGraphSvg', () => {
  test('root "all" spans the width; children share their parent by count, siblings sorted by name', () => {
    const svg = flameGraphSvg(STACKS, { title: 'CPU', width: 1020 });
    const f = frames(svg);
    assert.deepEqual(
      f.map((x) => [x.name, x.depth]),
      [
        ['all', 0],
        ['runsv', 1],
        ['poll', 2],
        ['sshd', 1],
        ['main', 2],
        ['read', 3],
        ['write', 3],
      ],
    );
    const by = (n: string) => f.find((x) => x.name === n)!;
    assert.equal(by('all').x, 10);
    assert.equal(by('all').width, 1000);
    assert.equal(by('runsv').width, 600);
    assert.equal(by('sshd').x, 610);
    assert.equal(by('read').width, 300);
    assert.equal(by('write').x, 910);
    assert.equal(by('all').title, 'all (100 samples, 100.00%)');
    assert.equal(by('write').title, 'write (10 samples, 10.00%)');
  });

  test('title, subtitle and count name; the interactive parts are there', () => {
    const svg = flameGraphSvg(STACKS, { title: 'Off-CPU Time', subtitle: 'offcputime -f', countName: 'us' });
    const root = parseXml(svg);
    const byId = (id: string) => allElements(root).find((e) => e.attrs.id === id);
    assert.equal(textOf(byId('title')!), 'Off-CPU Time');
    assert.equal(textOf(byId('subtitle')!), 'offcputime -f');
    assert.equal(textOf(byId('search')!), 'Search');
    assert.equal(textOf(byId('unzoom')!), 'Reset Zoom');
    assert.ok(byId('details') && byId('matched'));
    assert.ok(frames(svg).some((f) => f.title === 'runsv (60 us, 60.00%)'));
    const script = allElements(root).find((e) => e.name === 'script')!;
    for (const part of ['zoomTo', 'askSearch', 'Matched: ', "'Function: '", 'keydown', 'Reset Search']) {
      assert.ok(script.text.includes(part), part);
    }
  });

  test('names too long for their frame are cut with "..", tiny frames get no text', () => {
    assert.equal(fitText('a_rather_long_function_name', 80), 'a_rather_..');
    assert.equal(fitText('short', 80), 'short');
    assert.equal(fitText('anything', 15), '');
    const svg = flameGraphSvg(
      [
        { frames: ['x'.repeat(200)], count: 1 },
        { frames: ['y'], count: 1 },
      ],
      { title: 't' },
    );
    const long = frames(svg).find((f) => f.name.startsWith('x'))!;
    assert.ok(long.text.endsWith('..') && long.text.length < 200, long.text);
    assert.ok(long.text.length * 12 * 0.59 <= long.width);
  });

  test('frames narrower than 0.1 px are left out', () => {
    const svg = flameGraphSvg(
      [
        { frames: ['big'], count: 1_000_000 },
        { frames: ['tiny'], count: 1 },
      ],
      { title: 't' },
    );
    assert.deepEqual(
      frames(svg).map((f) => f.name),
      ['all', 'big'],
    );
  });

  test('colours are warm and depend only on the name', () => {
    for (const n of ['main', 'schedule', '<', '']) {
      const m = /^rgb\((\d+),(\d+),(\d+)\)$/.exec(frameColor(n))!;
      assert.ok(Number(m[1]) >= 205 && Number(m[3]) <= 55, frameColor(n));
      assert.equal(frameColor(n), frameColor(`${n}`));
    }
    const f = frames(flameGraphSvg(STACKS, { title: 't' }));
    assert.equal(f.find((x) => x.name === 'main')!.fill, frameColor('main'));
  });

  test('no samples: still a valid SVG saying so', () => {
    const svg = flameGraphSvg([{ frames: ['a'], count: 0 }], { title: 'empty', countName: 'us' });
    assert.ok(textOf(parseXml(svg)).includes('no us'));
    assert.equal(frames(svg).length, 0);
  });

  test('same input, same bytes; the order of the stacks does not matter', () => {
    const stacks = sampleStacks(300, 7);
    const a = flameGraphSvg(stacks, { title: 'CPU' });
    assert.equal(flameGraphSvg(sampleStacks(300, 7), { title: 'CPU' }), a);
    assert.equal(flameGraphSvg([...stacks].reverse(), { title: 'CPU' }), a);
  });

  test('hostile frame names and titles: escaped, and read back as they were', () => {
    const nasty = [
      '<script>alert(1)</script>',
      'a&b',
      '"quoted"',
      "it's",
      ']]>',
      'new\nline\ttab\rcr',
      'x\u0000y\u001b',
    ];
    const svg = flameGraphSvg(
      nasty.map((n, i) => ({ frames: ['root', n], count: i + 1 })),
      { title: '</svg><svg onload="x">', subtitle: '&amp;', countName: '<samples>' },
    );
    const root = parseXml(svg);
    assert.equal(allElements(root).filter((e) => e.name === 'script').length, 1);
    assert.ok(!allElements(root).some((e) => 'onload' in e.attrs));
    const names = frames(svg).map((f) => f.name);
    for (const n of nasty.slice(0, -1)) assert.ok(names.includes(n), JSON.stringify(n));
    assert.ok(names.includes('x\uFFFDy\uFFFD'), 'characters XML cannot carry become U+FFFD');
    assert.equal(textOf(allElements(root).find((e) => e.attrs.id === 'title')!), '</svg><svg onload="x">');
    assert.ok(frames(svg).some((f) => f.title === 'a&b (2 <samples>, 7.14%)'));
  });

  test('property: any stacks give well-formed XML with every frame name intact and widths that nest', () => {
    const name = fc.string({ unit: 'binary', maxLength: 10 }).filter((s) => s !== '');
    const stacks = fc.array(
      fc.record({
        frames: fc.array(name, { minLength: 1, maxLength: 5 }),
        count: fc.integer({ min: 1, max: 1000 }),
      }),
      { minLength: 1, maxLength: 20 },
    );
    const clean = (s: string) =>
      s.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD');
    fc.assert(
      fc.property(stacks, (st) => {
        const svg = flameGraphSvg(st, { title: 'p' });
        const f = frames(svg);
        const total = st.reduce((s, x) => s + x.count, 0);
        assert.equal(f[0]!.title, `all (${total} samples, 100.00%)`);
        const names = new Set(f.map((x) => x.name));
        for (const s of st) for (const n of s.frames) assert.ok(names.has(clean(n)), JSON.stringify(n));
        // every frame lies inside the frame below it (its parent comes earlier in document order)
        for (let i = 1; i < f.length; i++) {
          const parent = f
            .slice(0, i)
            .reverse()
            .find((p) => p.depth === f[i]!.depth - 1)!;
          assert.ok(f[i]!.x >= parent.x - 0.02 && f[i]!.x + f[i]!.width <= parent.x + parent.width + 0.03);
        }
      }),
      { numRuns: 150 },
    );
  });
});
