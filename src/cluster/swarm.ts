/**
 * Docker swarm on a cluster's `docker` nodes, driven from the host over kjx's own
 * channel (SSH exec, as `kjx cluster exec`): the first manager initialises the swarm
 * on its LAN address, kjx reads the join tokens there and hands each other node its
 * token in the `docker swarm join` it runs on that node. Tokens never go into a
 * file, an artifact or the events log. A node booted again after a kill has lost its
 * swarm state (/var/lib/docker is in RAM), so it joins again as a new node and the
 * stale entry is removed.
 */
import { KjxError } from '../util/errors.js';
import type { DetachedGuest } from '../vm/detached.js';
import { capture } from './engines.js';
import type { Cluster, ClusterNode } from './file.js';

export const SWARM_PORT = 2377;

export function swarmNodes(c: Cluster): ClusterNode[] {
  return c.nodes.filter((n) => n.engines.includes('docker'));
}

/** The node that initialises the swarm: the first `docker` node with role manager. */
export function swarmLeader(c: Cluster): ClusterNode | undefined {
  return swarmNodes(c).find((n) => n.role === 'manager');
}

/** USAGE when docker nodes have no manager to initialise their swarm. */
export function checkSwarm(c: Cluster): void {
  if (swarmNodes(c).length > 0 && !swarmLeader(c)) {
    throw new KjxError('USAGE', `the docker nodes of ${c.file} have no manager to initialise their swarm`, {
      hint: 'give one docker node group `role: manager`',
    });
  }
}

async function must(g: DetachedGuest, argv: string[], what: string, timeoutS = 180): Promise<string> {
  const r = await capture(g, argv, timeoutS);
  if (r.status !== 0) {
    throw new KjxError('SUBPROCESS', `${what} failed on ${g.name} (exit ${r.status})`, {
      details: [r.out.trim()],
      hint: `see dockerd's log: kjx cluster exec NODE -- cat /var/log/docker/current`,
    });
  }
  return r.out.trim();
}

export interface SwarmTokens {
  worker: string;
  manager: string;
}

/** `docker swarm init` on the leader; its join tokens. */
export async function initSwarm(leader: DetachedGuest, address: string): Promise<SwarmTokens> {
  await must(
    leader,
    ['docker', 'swarm', 'init', '--advertise-addr', address, '--listen-addr', `${address}:${SWARM_PORT}`],
    'docker swarm init',
  );
  return joinTokens(leader);
}

export async function joinTokens(manager: DetachedGuest): Promise<SwarmTokens> {
  const worker = await must(
    manager,
    ['docker', 'swarm', 'join-token', '-q', 'worker'],
    'docker swarm join-token',
  );
  const mgr = await must(
    manager,
    ['docker', 'swarm', 'join-token', '-q', 'manager'],
    'docker swarm join-token',
  );
  return { worker, manager: mgr };
}

/** `docker swarm join` on one node, with the token of its role. */
export async function joinSwarm(
  g: DetachedGuest,
  n: ClusterNode,
  leaderAddress: string,
  tokens: SwarmTokens,
): Promise<void> {
  await must(
    g,
    [
      'docker',
      'swarm',
      'join',
      '--token',
      n.role === 'manager' ? tokens.manager : tokens.worker,
      '--advertise-addr',
      n.address,
      '--listen-addr',
      `${n.address}:${SWARM_PORT}`,
      `${leaderAddress}:${SWARM_PORT}`,
    ],
    'docker swarm join',
  );
}

/** Hostnames of the swarm's nodes that are Ready, as `docker node ls` on a manager shows them. */
export async function readyNodes(manager: DetachedGuest): Promise<string[]> {
  const out = await must(
    manager,
    ['docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}}'],
    'docker node ls',
  );
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, s]) => s === 'Ready')
    .map(([h]) => h!);
}

/** Remove the Down entries a node left when it was killed (it joins again as a new node). */
export async function pruneDown(manager: DetachedGuest, hostname: string): Promise<void> {
  const out = await must(
    manager,
    ['docker', 'node', 'ls', '--format', '{{.ID}} {{.Hostname}} {{.Status}}'],
    'docker node ls',
  );
  for (const [id, host, status] of out.split('\n').map((l) => l.trim().split(/\s+/))) {
    if (host === hostname && status === 'Down' && id)
      await capture(manager, ['docker', 'node', 'rm', '--force', id]);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `docker node ls` on the manager shows every one of `hosts` Ready. */
export async function waitSwarmReady(
  manager: DetachedGuest,
  hosts: string[],
  timeoutS: number,
): Promise<number> {
  const t0 = performance.now();
  let seen: string[] = [];
  while ((performance.now() - t0) / 1000 < timeoutS) {
    seen = await readyNodes(manager);
    if (hosts.every((h) => seen.includes(h))) return (performance.now() - t0) / 1000;
    await sleep(1000);
  }
  throw new KjxError('VM_TIMEOUT', `the swarm did not have every node Ready within ${timeoutS} s`, {
    details: [`ready: ${seen.join(', ') || 'none'}; wanted: ${hosts.join(', ')}`],
    hint: 'see dockerd on a node: kjx cluster exec NODE -- cat /var/log/docker/current',
  });
}
