/**
 * A running cluster's state: `<state>/clusters/<name>/` holds `cluster.json` (its
 * nodes with their pids, addresses and VM names, the switch, the supervisor),
 * `events.jsonl` (one line per up, down, kill, start, partition, heal or netem,
 * with its time), the switch's sockets, the supervisor's socket and log, and each
 * node's per-boot files under `nodes/<node>/` (mode 0600: they may hold keys).
 * The node VMs themselves are detached VMs named `<cluster>.<node>` in
 * `<state>/vms/` (src/vm/registry.ts), so `kjx ps` shows them too.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import type { BootTiming } from '../vm/boot-phases.js';
import type { AccelRequest } from '../vm/prepare.js';
import { stateRoot } from '../vm/state.js';
import type { ClusterNode } from './file.js';
import type { NodeLink } from './switch.js';

export interface NodeRecord extends ClusterNode {
  /** The detached VM's name (`<cluster>.<node>`). */
  vm: string;
  pid: number;
  state: 'starting' | 'running' | 'killed' | 'failed';
  /** Its link to the cluster switch (switch.ts). */
  link: NodeLink;
  /** Delay and loss on its link, when set. */
  netem?: { delayMs: number; lossPct: number };
}

export interface ClusterRecord {
  name: string;
  file: string;
  subnet: string;
  supervisorPid: number;
  /** The accelerator asked for at `up` (a node started again gets the same). */
  accel: AccelRequest;
  switch: { pid: number; sock: string; mgmt: string };
  startedAt: string;
  nodes: NodeRecord[];
  /** The nodes cut off from the rest (`kjx cluster partition`), none when healed. */
  partition?: string[];
}

export type ClusterEvent =
  | { event: 'up'; nodes: string[]; seconds: number }
  | { event: 'down' }
  | { event: 'node-up'; node: string; pid: number; seconds: number }
  | { event: 'node-failed'; node: string; message: string }
  | { event: 'healthy'; engine: string; seconds: number }
  | { event: 'kill'; node: string }
  | { event: 'partition'; nodes: string[] }
  | { event: 'heal' }
  | { event: 'netem'; node: string; delayMs: number; lossPct: number }
  | { event: 'start'; node: string; seconds: number };

export function clustersRoot(): string {
  return join(stateRoot(), 'clusters');
}

export function clusterDir(name: string): string {
  return join(clustersRoot(), name);
}

export function vmNameOf(cluster: string, node: string): string {
  return `${cluster}.${node}`;
}

export function writeCluster(r: ClusterRecord): void {
  const dir = clusterDir(r.name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(dir, 'cluster.json'), `${JSON.stringify(r, null, 2)}\n`, 0o600);
}

export function readCluster(name: string): ClusterRecord | undefined {
  const p = join(clusterDir(name), 'cluster.json');
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as ClusterRecord;
  } catch {
    return undefined;
  }
}

/** The cluster's record, or a USAGE error saying how to start it. */
export function requireCluster(name: string): ClusterRecord {
  const r = readCluster(name);
  if (r) return r;
  throw new KjxError('USAGE', `cluster "${name}" is not up`, { hint: 'start it with `kjx cluster up`' });
}

/**
 * The boots of the cluster's nodes since `up`, one JSON line each (NodeBoot):
 * kept by `down` like events.jsonl (no keys in it), for `kjx cluster timeline`.
 */
export const BOOTS_FILE = 'boots.jsonl';

/** One boot of a node: QEMU's start (wall clock, ISO) and what the boot recorded. */
export interface NodeBoot extends BootTiming {
  node: string;
  startedAt: string;
}

export function recordBoot(name: string, b: NodeBoot): void {
  appendFileSync(join(clusterDir(name), BOOTS_FILE), `${JSON.stringify(b)}\n`, { mode: 0o600 });
}

/** Every boot of the cluster's nodes since it came up, oldest first. */
export function readBoots(name: string): NodeBoot[] {
  const p = join(clusterDir(name), BOOTS_FILE);
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as NodeBoot);
}

/** Append one event with its time to events.jsonl. */
export function logEvent(name: string, e: ClusterEvent): void {
  const dir = clusterDir(name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  appendFileSync(join(dir, 'events.jsonl'), `${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`, {
    mode: 0o600,
  });
}

export function readEvents(name: string): ({ time: string } & ClusterEvent)[] {
  const p = join(clusterDir(name), 'events.jsonl');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { time: string } & ClusterEvent);
}
