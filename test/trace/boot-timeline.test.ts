import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { bootTimeline } from '../../src/trace/boot-timeline.js';
import { bootTimelineSvg, rowText } from '../../src/trace/svg-timeline.js';
import { sampleBoot } from './fixtures.js';
import { allElements, parseXml, textOf } from './xml-check.js';

const close = (a: number | undefined, b: number) =>
  assert.ok(a !== undefined && Math.abs(a - b) < 1e-9, `${a} != ${b}`);

describe('bootTimeline', () => {
  test('a restored run: a restore row, then its command from there', () => {
    const t = bootTimeline({ restored: 0.4, commandDone: 0.9, qemuExit: 1 }, []);
    assert.deepEqual(
      t.rows.map((r) => [r.name, r.start, r.end]),
      [
        ['restore', 0, 0.4],
        ['command', 0.4, 0.9],
        ['poweroff', 0.9, 1],
      ],
    );
  });

  test('phase rows in boot order, then services by ready time on the host clock', () => {
    const { phases, services } = sampleBoot();
    const t = bootTimeline(phases, services);
    assert.deepEqual(
      t.rows.map((r) => [r.kind, r.name]),
      [
        ['phase', 'firmware'],
        ['phase', 'kernel'],
        ['phase', 'stage 1'],
        ['phase', 'stage 2'],
        ['phase', 'command'],
        ['phase', 'poweroff'],
        ['service', 'console'],
        ['service', 'network'],
        ['service', 'ssh'],
      ],
    );
    const row = (n: string) => t.rows.find((r) => r.name === n)!;
    assert.deepEqual([row('firmware').start, row('firmware').end], [0, 0.52]);
    assert.deepEqual([row('kernel').start, row('kernel').end], [0.52, 2.31]);
    assert.deepEqual([row('stage 2').start, row('stage 2').end], [2.62, 4.95]);
    // guest uptime + kernel start
    close(row('ssh').start, 2.3 + 0.52);
    close(row('ssh').ready, 3.91 + 0.52);
    close(row('ssh').stopped, 4.9 + 0.52);
    close(row('ssh').end, 4.9 + 0.52);
    assert.equal(row('console').stopped, undefined);
    assert.equal(row('console').end, 5.6, 'a running service lasts to the end');
    assert.equal(t.end, 5.6);
    assert.equal(t.ready, 4.95);
    assert.equal(t.offset, 0.52);
  });

  test('restarts are counted; a service that came back up is not stopped; never-ready services sort last', () => {
    const t = bootTimeline({ kernelStart: 1 }, [
      { name: 'flaky', state: 'up', uptime: 1 },
      { name: 'slow', state: 'up', uptime: 0.5 },
      { name: 'flaky', state: 'down', uptime: 1.5 },
      { name: 'flaky', state: 'up', uptime: 2 },
      { name: 'flaky', state: 'ready', uptime: 2.5 },
      { name: 'quick', state: 'up', uptime: 3 },
      { name: 'quick', state: 'ready', uptime: 3.1 },
      { name: 'odd', state: 'something-new', uptime: 0.1 },
    ]);
    assert.deepEqual(
      t.rows.map((r) => r.name),
      ['firmware', 'flaky', 'quick', 'odd', 'slow'],
    );
    const flaky = t.rows.find((r) => r.name === 'flaky')!;
    assert.equal(flaky.restarts, 1);
    assert.equal(flaky.stopped, undefined);
    assert.equal(flaky.start, 2);
    assert.equal(flaky.ready, 3.5);
    assert.equal(rowText(flaky), 'flaky ready 3.50 s, restarted 1x');
    assert.equal(rowText(t.rows.find((r) => r.name === 'slow')!), 'slow not ready');
  });

  test('missing phases are left out; no kernel start puts guest times at QEMU start', () => {
    const t = bootTimeline({}, [{ name: 'a', state: 'ready', uptime: 2 }]);
    assert.deepEqual(t.rows, [{ name: 'a', kind: 'service', start: 2, end: 2, ready: 2 }]);
    assert.equal(t.ready, undefined);
  });
});

describe('bootTimelineSvg', () => {
  test('a time axis, one bar group per row, each service with its ready time, in ready order', () => {
    const { phases, services } = sampleBoot();
    const svg = bootTimelineSvg(bootTimeline(phases, services), { title: 'kjx boot', subtitle: 'tcg' });
    const root = parseXml(svg);
    const texts = allElements(root)
      .filter((e) => e.name === 'text')
      .map(textOf);
    for (const want of ['kjx boot', 'tcg', '0.0 s', '5.5 s', 'kernel 1.79 s', 'all ready 4.95 s']) {
      assert.ok(texts.includes(want), want);
    }
    const serviceTexts = texts.filter((s) => / ready | not ready/.test(s) && !s.startsWith('all ready'));
    assert.deepEqual(serviceTexts, [
      'console ready 2.77 s',
      'network ready 4.22 s',
      'ssh ready 4.43 s, down 5.42 s',
    ]);
    const rows = allElements(root).filter((e) => e.name === 'g' && e.attrs.class?.startsWith('row'));
    assert.equal(rows.length, 9);
    const ssh = rows.find((g) => textOf(g).includes('ssh ready'))!;
    assert.equal(
      textOf(ssh.children[0]!),
      'ssh: up 2.82 s (uptime 2.30 s), ready 4.43 s (uptime 3.91 s), +1.61 s, down 5.42 s (uptime 4.90 s)',
    );
    // starting (light) then ready (dark) bars
    assert.equal(ssh.children.filter((c) => c.name === 'rect').length, 2);
  });

  test('deterministic; hostile service names escaped; an empty timeline still renders', () => {
    const t = bootTimeline({ kernelStart: 0.5 }, [{ name: '<x&"y">', state: 'ready', uptime: 1 }]);
    const svg = bootTimelineSvg(t, { title: 'a<b' });
    assert.equal(bootTimelineSvg(t, { title: 'a<b' }), svg);
    const texts = allElements(parseXml(svg)).map(textOf);
    assert.ok(texts.includes('<x&"y"> ready 1.50 s'));
    const empty = bootTimelineSvg(bootTimeline({}, []), { title: 'nothing' });
    assert.ok(allElements(parseXml(empty)).some((e) => textOf(e) === 'no boot phases recorded'));
  });

  test('regression: a timeline ending at a denormal time renders (the axis step underflowed to 0 and looped until out of memory)', () => {
    const t = bootTimeline({ kernelStart: 5e-324 }, []);
    const svg = bootTimelineSvg(t, { title: 'tiny' });
    assert.ok(parseXml(svg));
    assert.ok(svg.length < 100_000);
  });

  test('property: any phases and service events give well-formed XML with one row group per row', () => {
    const time = fc.double({ min: 0, max: 100, noNaN: true });
    const phases = fc.record(
      { kernelStart: time, initExec: time, stage2: time, ready: time, commandDone: time, qemuExit: time },
      { requiredKeys: [] },
    );
    const event = fc.record({
      name: fc.string({ minLength: 1, maxLength: 8 }),
      state: fc.constantFrom('up', 'ready', 'down', 'weird'),
      uptime: time,
    });
    fc.assert(
      fc.property(phases, fc.array(event, { maxLength: 12 }), (p, events) => {
        const t = bootTimeline(p, events);
        const root = parseXml(bootTimelineSvg(t, { title: 'p' }));
        const rows = allElements(root).filter((e) => e.name === 'g' && e.attrs.class?.startsWith('row'));
        assert.equal(rows.length, t.rows.length);
        assert.equal(
          t.rows.filter((r) => r.kind === 'service').length,
          new Set(events.map((e) => e.name)).size,
        );
      }),
    );
  });
});
