/**
 * A boot as rows on one time axis, like `systemd-analyze plot`: the boot phases the
 * host timed (firmware, kernel, runit stage 1, stage 2, ...) and one row per service
 * from start to ready to stop.
 *
 * Inputs are what a boot records (src/vm/boot-phases.ts): `Phases`, seconds since QEMU was
 * spawned on the host clock, and `ServiceEvent`s from the guest's
 * `@@kjx:service name= state=up|ready|down t=UPTIME` markers (docs/services.md), in
 * guest seconds since the kernel started. Adding `phases.kernelStart` puts both on the
 * host clock.
 */
import type { Phases, ServiceEvent } from '../vm/boot-phases.js';

export interface TimelineRow {
  name: string;
  kind: 'phase' | 'service';
  /** Seconds since QEMU was spawned. */
  start: number;
  /** End of the bar: a phase's end, a service's stop, or the end of the timeline if it still ran. */
  end: number;
  /** Services: when it became ready (first time). */
  ready?: number;
  /** Services: when it went down for good (the last event was `down`). */
  stopped?: number;
  /** Services: how often it was started again after the first start. */
  restarts?: number;
  /** Whose row, when one timeline holds several VMs (a cluster's nodes). */
  node?: string;
  /** Where this row's guest uptime 0 lies on the axis, when it is not the timeline's `offset`. */
  offset?: number;
}

export interface BootTimeline {
  /** Phase rows in boot order, then services by ready time. */
  rows: TimelineRow[];
  /** Where the time axis ends (seconds since QEMU spawned). */
  end: number;
  /** `phases.ready`: all services ready (the `@@kjx:ready` marker). */
  ready?: number;
  /** Where guest uptime 0 (the kernel's start) lies on this axis. */
  offset: number;
}

/**
 * Rows for the phases known (a phase needs both ends) and for every service that
 * reported a state. Services never ready sort after the ready ones, by start.
 */
export function bootTimeline(phases: Phases, services: ServiceEvent[]): BootTimeline {
  const offset = phases.kernelStart ?? 0;
  const spans: [string, number | undefined, number | undefined][] = [
    ['restore', 0, phases.restored],
    ['firmware', 0, phases.kernelStart],
    ['kernel', phases.kernelStart, phases.initExec],
    ['stage 1', phases.initExec, phases.stage2],
    ['stage 2', phases.stage2, phases.ready],
    ['command', phases.ready ?? phases.restored, phases.commandDone],
    ['poweroff', phases.commandDone, phases.qemuExit],
  ];
  const rows: TimelineRow[] = [];
  for (const [name, start, end] of spans) {
    if (start !== undefined && end !== undefined && end >= start)
      rows.push({ name, kind: 'phase', start, end });
  }

  interface Track {
    name: string;
    first: number;
    start?: number;
    ready?: number;
    stopped?: number;
    ups: number;
  }
  const tracks = new Map<string, Track>();
  for (const e of services) {
    if (!Number.isFinite(e.uptime)) continue;
    const t = offset + e.uptime;
    let tr = tracks.get(e.name);
    if (!tr) {
      tr = { name: e.name, first: t, ups: 0 };
      tracks.set(e.name, tr);
    }
    if (e.state === 'up') {
      tr.ups++;
      tr.start ??= t;
      tr.stopped = undefined;
    } else if (e.state === 'ready') {
      tr.ready ??= t;
      tr.stopped = undefined;
    } else if (e.state === 'down') {
      tr.stopped = t;
    }
  }
  const times = [
    ...rows.map((r) => r.end),
    ...[...tracks.values()].flatMap((t) => [t.first, t.ready ?? 0, t.stopped ?? 0]),
    phases.qemuExit ?? 0,
  ];
  const end = Math.max(0, ...times);
  const serviceRows: TimelineRow[] = [...tracks.values()].map((t) => {
    const start = t.start ?? t.first;
    const row: TimelineRow = { name: t.name, kind: 'service', start, end: t.stopped ?? end };
    if (t.ready !== undefined) row.ready = t.ready;
    if (t.stopped !== undefined) row.stopped = t.stopped;
    if (t.ups > 1) row.restarts = t.ups - 1;
    return row;
  });
  serviceRows.sort(
    (a, b) =>
      (a.ready ?? Number.POSITIVE_INFINITY) - (b.ready ?? Number.POSITIVE_INFINITY) ||
      a.start - b.start ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  const t: BootTimeline = { rows: [...rows, ...serviceRows], end, offset };
  if (phases.ready !== undefined) t.ready = phases.ready;
  return t;
}
