/**
 * A boot as the host saw it: phases from the arrival times of the guest's markers
 * (docs/guest-protocol.md) and the services' state changes in the order the guest
 * reported them. The same for every kind of VM (`kjx run`, `boot`, `boot --detach`,
 * `test`, `trace`), which all follow the console through console.ts.
 */
import type { TimedMarker } from './console.js';

/** A service state change the guest reported, in guest seconds since boot. */
export interface ServiceEvent {
  name: string;
  state: string;
  uptime: number;
}

/** Service state changes in the order the guest reported them (`@@kjx:service` markers). */
export function serviceEvents(markers: TimedMarker[]): ServiceEvent[] {
  return markers
    .filter((m) => m.event === 'service' && m.fields.name && m.fields.state)
    .map((m) => ({ name: m.fields.name!, state: m.fields.state!, uptime: Number(m.fields.t) }));
}

/** Boot phases in seconds since QEMU was spawned (host clock; guest uptime where noted). */
export interface Phases {
  /** A restored VM: when it was loaded and running again (it has no boot phases). */
  restored?: number;
  kernelStart?: number;
  initExec?: number;
  stage2?: number;
  ready?: number;
  commandDone?: number;
  qemuExit?: number;
}

/** Phases from marker arrival times; kernel start from the init marker's guest uptime. */
export function phasesOf(s: { startedAt: number; markers: TimedMarker[]; exitedAt?: number }): Phases {
  const sec = (at: number) => (at - s.startedAt) / 1000;
  const first = (e: string) => s.markers.find((m) => m.event === e);
  const p: Phases = {};
  const init = first('init');
  if (init) p.initExec = sec(init.at);
  // the guest's uptime at a marker dates the kernel's start on the host clock
  // (the init marker comes before /proc is mounted, so a later one carries it)
  const dated = s.markers.find((m) => Number(m.fields.uptime) > 0);
  if (dated) p.kernelStart = Math.max(0, sec(dated.at) - Number(dated.fields.uptime));
  const stage2 = first('stage2');
  if (stage2) p.stage2 = sec(stage2.at);
  const ready = first('ready');
  if (ready) p.ready = sec(ready.at);
  const exit = first('exit');
  if (exit) p.commandDone = sec(exit.at);
  if (s.exitedAt !== undefined) p.qemuExit = sec(s.exitedAt);
  return p;
}

/** What `--timing` shows and draws of one boot. */
export interface BootTiming {
  phases: Phases;
  services: ServiceEvent[];
}

export function bootTiming(s: { startedAt: number; markers: TimedMarker[]; exitedAt?: number }): BootTiming {
  return { phases: phasesOf(s), services: serviceEvents(s.markers) };
}
