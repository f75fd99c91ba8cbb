/**
 * One timeline of a whole cluster: every boot of every node (its phases and its
 * services, as the single-VM boot timeline draws them, src/trace/boot-timeline.ts)
 * on one time axis, with the events of events.jsonl (up, healthy, kill, start,
 * partition, heal, netem, down) as marks across it.
 *
 * The axis counts from the first boot's QEMU start on the host's wall clock. Each
 * boot's rows are in seconds since its own QEMU start, so they shift by when that
 * QEMU started (`startedAt` in boots.jsonl, taken just before the spawn); the
 * services inside a boot stay on the guest's clock, as in `kjx boot --timing`.
 */
import { type BootTimeline, bootTimeline, type TimelineRow } from '../trace/boot-timeline.js';
import type { TimelineMark } from '../trace/svg-timeline.js';
import type { ClusterEvent, NodeBoot } from './state.js';

export interface ClusterTimeline {
  timeline: BootTimeline;
  marks: TimelineMark[];
  /** Wall-clock time of the axis' zero (ISO). */
  origin: string;
}

type TimedEvent = { time: string } & ClusterEvent;

/** The words of one event on the timeline. */
export function eventLabel(e: ClusterEvent): string {
  switch (e.event) {
    case 'up':
      return `up (${e.nodes.length} nodes)`;
    case 'down':
      return 'down';
    case 'node-up':
      return `${e.node} ready`;
    case 'node-failed':
      return `${e.node} failed`;
    case 'healthy':
      return `${e.engine} healthy`;
    case 'kill':
      return `kill ${e.node}`;
    case 'start':
      return `start ${e.node}`;
    case 'partition':
      return `partition ${e.nodes.join(' ')}`;
    case 'heal':
      return 'heal';
    case 'netem':
      return e.delayMs === 0 && e.lossPct === 0
        ? `netem ${e.node} off`
        : `netem ${e.node} ${e.delayMs} ms ${e.lossPct}%`;
  }
}

/**
 * The rows and marks of the boots recorded since the cluster came up, and of the
 * events from the first boot on (node-up lines are left out: a node's ready phase
 * says it). A boot ends where its node was killed next, or at the cluster's end.
 */
export function clusterTimeline(boots: NodeBoot[], events: TimedEvent[], now = Date.now()): ClusterTimeline {
  if (boots.length === 0) return { timeline: { rows: [], end: 0, offset: 0 }, marks: [], origin: '' };
  const origin = Math.min(...boots.map((b) => Date.parse(b.startedAt)));
  const sec = (iso: string) => (Date.parse(iso) - origin) / 1000;
  const shown = events.filter((e) => sec(e.time) >= -1 && e.event !== 'node-up');
  const down = shown.find((e) => e.event === 'down');
  const last = down ? sec(down.time) : Math.max((now - origin) / 1000, ...shown.map((e) => sec(e.time)));
  const rows: TimelineRow[] = [];
  for (const b of boots) {
    const at = sec(b.startedAt);
    const kill = shown.find((e) => e.event === 'kill' && e.node === b.node && sec(e.time) > at);
    const end = (kill ? sec(kill.time) : last) - at;
    const t = bootTimeline(b.phases, b.services);
    for (const r of t.rows) {
      const open = r.kind === 'service' && r.stopped === undefined;
      const row: TimelineRow = {
        ...r,
        start: r.start + at,
        end: (open ? Math.max(end, r.end) : r.end) + at,
        node: b.node,
        offset: t.offset + at,
      };
      if (r.ready !== undefined) row.ready = r.ready + at;
      if (r.stopped !== undefined) row.stopped = r.stopped + at;
      rows.push(row);
    }
  }
  const marks = shown.map((e) => ({ at: Math.max(0, sec(e.time)), label: eventLabel(e) }));
  const end = Math.max(last, ...rows.map((r) => r.end), ...marks.map((m) => m.at));
  return { timeline: { rows, end, offset: 0 }, marks, origin: new Date(origin).toISOString() };
}
