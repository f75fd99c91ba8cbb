/**
 * The cluster timeline from recorded boots and events (fixtures written here): each
 * boot's rows shift to when its QEMU started, a kill ends that boot's service bars,
 * the events become marks, and the SVG the single-VM renderer draws holds them all.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterEvent, NodeBoot } from '../../src/cluster/state.js';
import { clusterTimeline } from '../../src/cluster/timeline.js';
import { bootTimelineSvg } from '../../src/trace/svg-timeline.js';
import { allElements, parseXml, textOf } from '../trace/xml-check.js';

const T0 = Date.parse('2026-12-02T10:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

/** A boot whose kernel starts 0.5 s after QEMU, tracer ready at uptime 3, etcd up at 3.2. */
function boot(node: string, startS: number): NodeBoot {
  return {
    node,
    startedAt: at(startS),
    phases: { kernelStart: 0.5, initExec: 2, stage2: 2.5, ready: 5 },
    services: [
      { name: 'tracer', state: 'up', uptime: 2.1 },
      { name: 'tracer', state: 'ready', uptime: 3 },
      { name: 'etcd', state: 'up', uptime: 3.2 },
      { name: 'etcd', state: 'ready', uptime: 3.3 },
    ],
  };
}

const events: ({ time: string } & ClusterEvent)[] = [
  { time: at(-100), event: 'down' }, // an earlier life of the cluster: not shown
  { time: at(6), event: 'node-up', node: 'n1', pid: 1, seconds: 6 },
  { time: at(7), event: 'healthy', engine: 'etcd', seconds: 1 },
  { time: at(7.5), event: 'up', nodes: ['n1', 'n2'], seconds: 7.5 },
  { time: at(20), event: 'kill', node: 'n2' },
  { time: at(30), event: 'partition', nodes: ['n1'] },
  { time: at(32), event: 'heal' },
  { time: at(40), event: 'start', node: 'n2', seconds: 6 },
  { time: at(50), event: 'down' },
];

test('every boot on one axis from the first QEMU start; a kill ends that boot; events are marks', () => {
  const boots = [boot('n1', 0), boot('n2', 1), boot('n2', 34)];
  const { timeline, marks, origin } = clusterTimeline(boots, events);
  assert.equal(origin, at(0));
  const rows = (node: string, name: string) =>
    timeline.rows.filter((r) => r.node === node && r.name === name);
  // n2's first boot: QEMU at 1 s, kernel at 1.5 s, tracer ready at 1.5 + 3 s
  const [n2first, n2again] = rows('n2', 'tracer');
  assert.equal(n2first!.ready, 4.5);
  assert.equal(rows('n2', 'kernel')[0]!.start, 1.5);
  // its bars end at the kill (20 s); the boot after start runs to down (50 s)
  assert.equal(n2first!.end, 20);
  assert.equal(n2again!.ready, 37.5);
  assert.equal(n2again!.end, 50);
  assert.equal(rows('n1', 'etcd')[0]!.end, 50);
  // etcd up after the tracer was ready, on every boot (guest order kept)
  for (const node of ['n1', 'n2'])
    rows(node, 'etcd').forEach((e, i) => {
      assert.ok(e.start >= rows(node, 'tracer')[i]!.ready!);
    });
  assert.deepEqual(
    marks.map((m) => [m.at, m.label]),
    [
      [7, 'etcd healthy'],
      [7.5, 'up (2 nodes)'],
      [20, 'kill n2'],
      [30, 'partition n1'],
      [32, 'heal'],
      [40, 'start n2'],
      [50, 'down'],
    ],
  );
  assert.equal(timeline.end, 50);
});

test('the SVG names each node’s rows and every event, and is well-formed', () => {
  const { timeline, marks } = clusterTimeline([boot('n1', 0), boot('n2', 1)], events);
  const svg = bootTimelineSvg(timeline, {
    title: 'cluster lab',
    marks,
    axis: 'seconds since the first node started',
  });
  const root = parseXml(svg);
  const texts = allElements(root)
    .filter((e) => e.name === 'text')
    .map(textOf);
  for (const want of [
    'n1: kernel 1.50 s',
    'n2: tracer ready 4.50 s',
    'n1: etcd ready 3.80 s',
    'kill n2 20.00 s',
    'heal 32.00 s',
  ])
    assert.ok(
      texts.some((t) => t === want),
      `${want} in ${texts.join(' | ')}`,
    );
  assert.equal(
    allElements(root).filter((e) => e.name === 'line' && e.attrs.class === 'mark').length,
    marks.length,
  );
  assert.equal(
    svg,
    bootTimelineSvg(timeline, { title: 'cluster lab', marks, axis: 'seconds since the first node started' }),
  );
});

test('no boots: an empty timeline, no marks', () => {
  assert.deepEqual(clusterTimeline([], events), {
    timeline: { rows: [], end: 0, offset: 0 },
    marks: [],
    origin: '',
  });
});
