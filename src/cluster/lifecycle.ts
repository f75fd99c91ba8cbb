/**
 * A cluster's life: `up` prepares each spec once (prepare.ts), starts the cluster's
 * supervisor (supervisor.ts) and through it the switch (switch.ts) and every node,
 * in parallel, each a detached VM (launch.ts) with a LAN NIC on the switch and its
 * per-boot payload (node-payload.ts); `down` powers the nodes off and ends the
 * supervisor, which ends whatever is left. While `up` runs it guards the cluster
 * through its connection to the supervisor: if kjx dies, the cluster dies with it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_FW_CFG_NAME } from '../guest/layout.js';
import type { Spec } from '../spec/schema.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import { attach, type DetachedGuest, stopVm } from '../vm/detached.js';
import type { Limits } from '../vm/guest.js';
import { launch } from '../vm/launch.js';
import { type AccelRequest, type Prepared, prepareBoot } from '../vm/prepare.js';
import { isQemuPid, readRecord, removeVm } from '../vm/registry.js';
import { checkEngines, engineFiles, etcdMembers, waitEtcdHealthy } from './engines.js';
import type { Cluster, ClusterNode } from './file.js';
import { type NodeFile, nodeFiles, nodePayload } from './node-payload.js';
import {
  BOOTS_FILE,
  type ClusterRecord,
  clusterDir,
  logEvent,
  type NodeRecord,
  readCluster,
  recordBoot,
  requireCluster,
  vmNameOf,
  writeCluster,
} from './state.js';
import { connectSupervisor, startSupervisor } from './supervisor.js';
import {
  checkSwarm,
  initSwarm,
  joinSwarm,
  joinTokens,
  pruneDown,
  swarmLeader,
  swarmNodes,
  waitSwarmReady,
} from './swarm.js';
import { PARTITION_VLAN, setNetem, startNodeLink, startSwitch, switchCommands } from './switch.js';

export interface UpOptions extends Limits {
  accel: AccelRequest;
  warn: WarnFn;
  /** One line per step (a node ready, a node failed). */
  progress?: (line: string) => void;
}

/** Is this pid alive (any program, not a zombie)? */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Is the cluster's supervisor running? */
function supervisorUp(r: ClusterRecord): boolean {
  return r.supervisorPid > 0 && pidAlive(r.supervisorPid);
}

/** Bring up every node of `c`; returns the record once all are ready. */
export async function clusterUp(c: Cluster, o: UpOptions): Promise<ClusterRecord> {
  const old = readCluster(c.name);
  if (old && supervisorUp(old)) {
    throw new KjxError('USAGE', `cluster "${c.name}" is already up (supervisor pid ${old.supervisorPid})`, {
      hint: 'see it with `kjx cluster status`, or end it with `kjx cluster down`',
    });
  }
  if (old) await clearLeftovers(old);
  const t0 = performance.now();
  // every spec read and checked before any build; then one build and boot preparation per spec
  const { loadSpec } = await import('../spec/load.js');
  const specs = new Map(c.nodes.map((n) => [n.spec, undefined as Spec | undefined]));
  for (const path of specs.keys()) specs.set(path, loadSpec(path));
  checkEngines(c, (spec) => specs.get(spec)!.components);
  checkSwarm(c);
  const prepared = new Map<string, Prepared>();
  for (const [path, spec] of specs) {
    prepared.set(
      path,
      await prepareBoot({
        specPath: path,
        spec: spec!,
        outDir: join(path, '..', 'dist'),
        warn: o.warn,
        accel: o.accel,
      }),
    );
  }
  const dir = clusterDir(c.name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const f of ['cluster.json', 'supervisor.log', BOOTS_FILE]) rmSync(join(dir, f), { force: true });
  // keys one at a time: the CA's serial file is shared
  const extra = new Map<string, NodeFile[]>();
  for (const n of c.nodes) extra.set(n.name, await engineFiles(c, n, dir, 'new'));
  const { pid: supervisorPid, client } = await startSupervisor(dir);
  try {
    await client.hold();
    const sw = await startSwitch(dir, client, c.nodes.length);
    const rec: ClusterRecord = {
      name: c.name,
      file: c.file,
      subnet: c.subnet,
      supervisorPid,
      accel: o.accel,
      switch: sw,
      startedAt: new Date().toISOString(),
      nodes: [],
    };
    for (const n of c.nodes) {
      const link = await startNodeLink(join(dir, 'nodes', n.name), client, sw, n.port);
      rec.nodes.push({ ...n, vm: vmNameOf(c.name, n.name), pid: -1, state: 'starting', link });
    }
    writeCluster(rec);
    const results = await Promise.allSettled(
      rec.nodes.map(async (n) => {
        const p = prepared.get(n.spec)!;
        const t = performance.now();
        const g = await bootNode(rec, c, n, p, o, extra.get(n.name)!, (argv, stderr) =>
          client.spawn(argv, { stderr }),
        );
        n.pid = g.record.pid;
        n.state = 'running';
        const seconds = (performance.now() - t) / 1000;
        logEvent(c.name, { event: 'node-up', node: n.name, pid: n.pid, seconds });
        o.progress?.(`${n.name}: ready in ${seconds.toFixed(1)} s (pid ${n.pid}, ${n.address})`);
      }),
    );
    const failed = results.flatMap((r, i) =>
      r.status === 'rejected' ? [{ n: rec.nodes[i]!, e: r.reason }] : [],
    );
    if (failed.length > 0) {
      for (const f of failed) {
        f.n.state = 'failed';
        logEvent(c.name, { event: 'node-failed', node: f.n.name, message: String((f.e as Error).message) });
      }
      throw failed[0]!.e;
    }
    writeCluster(rec);
    const members = etcdMembers(c);
    if (members.length > 0) {
      const seconds = await waitEtcdHealthy(
        attach(vmNameOf(c.name, members[0]!.name)),
        members.length,
        o.timeoutS ?? 600,
      );
      logEvent(c.name, { event: 'healthy', engine: 'etcd', seconds });
      o.progress?.(`etcd: ${members.length} members healthy after ${seconds.toFixed(1)} s more`);
    }
    const leader = swarmLeader(c);
    if (leader) {
      const seconds = await formSwarm(c, leader, o.timeoutS ?? 600);
      logEvent(c.name, { event: 'healthy', engine: 'docker', seconds });
      o.progress?.(`docker: swarm of ${swarmNodes(c).length} nodes ready after ${seconds.toFixed(1)} s more`);
    }
    await client.keep();
    logEvent(c.name, {
      event: 'up',
      nodes: rec.nodes.map((n) => n.name),
      seconds: (performance.now() - t0) / 1000,
    });
    return rec;
  } catch (e) {
    await client.down();
    await waitGone(supervisorPid, 10_000);
    const r = readCluster(c.name);
    if (r) await clearLeftovers(r);
    throw e;
  } finally {
    client.close();
  }
}

/**
 * The swarm from the docker nodes: the leader inits on its LAN address, every other
 * node joins with the token of its role (handed over exec, never written down);
 * returns the seconds until every node is Ready.
 */
async function formSwarm(c: Cluster, leader: ClusterNode, timeoutS: number): Promise<number> {
  const t0 = performance.now();
  const lead = attach(vmNameOf(c.name, leader.name));
  const tokens = await initSwarm(lead, leader.address);
  const others = swarmNodes(c).filter((n) => n.name !== leader.name);
  await Promise.all(
    others.map((n) => joinSwarm(attach(vmNameOf(c.name, n.name)), n, leader.address, tokens)),
  );
  await waitSwarmReady(
    lead,
    swarmNodes(c).map((n) => n.name),
    timeoutS,
  );
  return (performance.now() - t0) / 1000;
}

/** A docker node booted again joins the swarm anew; its stale Down entry goes. */
async function rejoinSwarm(c: Cluster, n: ClusterNode, timeoutS: number): Promise<void> {
  const leader = swarmLeader(c);
  if (!leader || !n.engines.includes('docker') || leader.name === n.name) return;
  const lead = attach(vmNameOf(c.name, leader.name));
  await pruneDown(lead, n.name);
  await joinSwarm(attach(vmNameOf(c.name, n.name)), n, leader.address, await joinTokens(lead));
  await waitSwarmReady(lead, [n.name], timeoutS);
}

/** Boot one node as a detached VM with its LAN NIC and per-boot payload. */
async function bootNode(
  _rec: ClusterRecord,
  c: Cluster,
  n: NodeRecord,
  p: Prepared,
  o: Limits,
  extra: NodeFile[],
  spawn: (argv: string[], stderr: string) => Promise<number>,
): Promise<DetachedGuest> {
  const nodeDir = join(clusterDir(c.name), 'nodes', n.name);
  mkdirSync(nodeDir, { recursive: true, mode: 0o700 });
  const payload = join(nodeDir, 'boot.cpio');
  const imagePaths = new Set(p.image.manifest.files.map((f) => f.path));
  writeFileSync(payload, nodePayload([...nodeFiles(c, n), ...extra], imagePaths), { mode: 0o600 });
  const mem = n.memoryMiB ? { ...p, memoryMiB: n.memoryMiB } : p;
  const g = await launch(mem, {
    detached: {
      name: n.vm,
      timeoutS: o.timeoutS,
      silenceS: o.silenceS,
      lan: { socket: n.link.sock, mac: n.mac },
      fwCfg: [{ name: RUN_FW_CFG_NAME, file: payload }],
      spawn,
    },
  });
  recordBoot(c.name, { node: n.name, startedAt: g.record.startedAt, ...g.timing() });
  return g;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (!pidAlive(pid)) return true;
    await sleep(50);
  }
  return !pidAlive(pid);
}

/**
 * What a cluster left after a crash or a failed `up`: kill any node QEMU still
 * running, remove the node VMs' directories, the sockets and per-node files (they
 * may hold keys). events.jsonl and boots.jsonl stay.
 */
async function clearLeftovers(r: ClusterRecord): Promise<void> {
  for (const n of r.nodes) {
    const vm = readRecord(n.vm);
    if (vm && isQemuPid(vm.pid)) {
      try {
        process.kill(vm.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (isQemuPid(n.pid)) {
      try {
        process.kill(n.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (vm) removeVm(vm);
  }
  if (r.supervisorPid > 0 && pidAlive(r.supervisorPid)) {
    try {
      process.kill(r.supervisorPid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  const dir = clusterDir(r.name);
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir))
    if (f !== 'events.jsonl' && f !== BOOTS_FILE) rmSync(join(dir, f), { recursive: true, force: true });
}

export interface DownResult {
  name: string;
  nodes: { name: string; how: string; seconds: number }[];
}

/** Power every node off (ACPI, then quit, then kill), end the supervisor and the switch. */
export async function clusterDown(name: string, deadlineS = 10): Promise<DownResult> {
  const r = requireCluster(name);
  const nodes = await Promise.all(
    r.nodes.map(async (n) => {
      const vm = readRecord(n.vm);
      if (!vm || !isQemuPid(vm.pid)) return { name: n.name, how: 'gone', seconds: 0 };
      const s = await stopVm(vm, deadlineS);
      return { name: n.name, how: s.how, seconds: s.seconds };
    }),
  );
  if (supervisorUp(r)) {
    try {
      const client = await connectSupervisor(clusterDir(name), 3000);
      await client.down();
      client.close();
    } catch {
      // not answering: the kill below ends it
    }
    await waitGone(r.supervisorPid, 5000);
  }
  await clearLeftovers(r);
  logEvent(name, { event: 'down' });
  return { name, nodes };
}

export interface NodeStatus {
  name: string;
  vm: string;
  pid: number;
  address: string;
  role: string;
  engines: string[];
  state: 'running' | 'killed' | 'down';
  netem?: { delayMs: number; lossPct: number };
}

export interface ClusterStatus {
  name: string;
  up: boolean;
  supervisorPid: number;
  switch: { pid: number; running: boolean };
  nodes: NodeStatus[];
  /** Nodes cut off from the rest. */
  partition: string[];
}

/** What runs of a cluster, from its record and the live pids. */
export function clusterStatus(name: string): ClusterStatus {
  const r = requireCluster(name);
  return {
    name,
    up: supervisorUp(r),
    supervisorPid: r.supervisorPid,
    switch: { pid: r.switch.pid, running: pidAlive(r.switch.pid) },
    partition: r.partition ?? [],
    nodes: r.nodes.map((n) => ({
      name: n.name,
      vm: n.vm,
      pid: n.pid,
      address: n.address,
      role: n.role,
      engines: n.engines,
      state: isQemuPid(n.pid) ? 'running' : n.state === 'killed' ? 'killed' : 'down',
      ...(n.netem ? { netem: n.netem } : {}),
    })),
  };
}

function nodeOf(r: ClusterRecord, node: string): NodeRecord {
  const n = r.nodes.find((x) => x.name === node);
  if (n) return n;
  throw new KjxError('USAGE', `cluster "${r.name}" has no node "${node}"`, {
    hint: `its nodes: ${r.nodes.map((x) => x.name).join(', ')}`,
  });
}

/** A power cut: SIGKILL of the node's QEMU (its supervisor reaps it). */
export async function killNode(cluster: string, node: string): Promise<void> {
  const r = requireCluster(cluster);
  const n = nodeOf(r, node);
  if (!isQemuPid(n.pid)) {
    throw new KjxError('USAGE', `node ${node} of cluster "${cluster}" is not running`, {
      hint: `start it with \`kjx cluster start ${node}\``,
    });
  }
  process.kill(n.pid, 'SIGKILL');
  await waitGone(n.pid, 10_000);
  const vm = readRecord(n.vm);
  if (vm) removeVm(vm);
  n.state = 'killed';
  writeCluster(r);
  logEvent(cluster, { event: 'kill', node });
}

/**
 * Boot a node that was killed again, under the cluster's supervisor, with the same
 * address and a payload that makes an etcd member rejoin (`existing`).
 */
export async function startNode(c: Cluster, node: string, o: Omit<UpOptions, 'accel'>): Promise<NodeRecord> {
  const r = requireCluster(c.name);
  const n = nodeOf(r, node);
  if (isQemuPid(n.pid)) {
    throw new KjxError('USAGE', `node ${node} of cluster "${c.name}" is already running (pid ${n.pid})`);
  }
  if (!supervisorUp(r)) {
    throw new KjxError('USAGE', `cluster "${c.name}" is not running (its supervisor is gone)`, {
      hint: '`kjx cluster down`, then `kjx cluster up`',
    });
  }
  const t = performance.now();
  const p = await prepareBoot({
    specPath: n.spec,
    outDir: join(n.spec, '..', 'dist'),
    warn: o.warn,
    accel: r.accel,
  });
  const extra = await engineFiles(c, n, clusterDir(c.name), 'existing');
  const client = await connectSupervisor(clusterDir(c.name), 3000);
  try {
    n.state = 'starting';
    const g = await bootNode(r, c, n, p, o, extra, (argv, stderr) => client.spawn(argv, { stderr }));
    n.pid = g.record.pid;
    n.state = 'running';
    await rejoinSwarm(c, n, o.timeoutS ?? 600);
  } catch (e) {
    n.state = 'failed';
    throw e;
  } finally {
    client.close();
    writeCluster(r);
  }
  logEvent(c.name, { event: 'start', node, seconds: (performance.now() - t) / 1000 });
  return n;
}

/** The cluster switch's ports of these nodes (a node's link stays while it is down), each moved to `vlan`. */
function moveCommands(r: ClusterRecord, names: string[], vlan: number): string[] {
  return r.nodes.filter((n) => names.includes(n.name)).map((n) => `port/setvlan ${n.port} ${vlan}`);
}

/** Delay (ms, each way) and loss (%, each way) on a node's link; 0 and 0 take them off. */
export async function netem(cluster: string, node: string, delayMs: number, lossPct: number): Promise<void> {
  const r = requireCluster(cluster);
  const n = nodeOf(r, node);
  if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > 60_000 || !(lossPct >= 0 && lossPct <= 100)) {
    throw new KjxError(
      'USAGE',
      `netem ${node}: --delay takes whole milliseconds from 0 to 60000, --loss a percentage from 0 to 100`,
    );
  }
  await setNetem(n.link, delayMs, lossPct);
  if (delayMs === 0 && lossPct === 0) delete n.netem;
  else n.netem = { delayMs, lossPct };
  writeCluster(r);
  logEvent(cluster, { event: 'netem', node, delayMs, lossPct });
}

/**
 * Cut `nodes` off from the rest: their switch ports go to another VLAN, so they
 * reach each other and nobody else (an earlier partition is healed first).
 */
export async function partition(cluster: string, nodes: string[]): Promise<void> {
  const r = requireCluster(cluster);
  for (const n of nodes) nodeOf(r, n);
  if (nodes.length === 0 || r.nodes.every((n) => nodes.includes(n.name))) {
    throw new KjxError(
      'USAGE',
      'a partition cuts some nodes off from the rest: name at least one node, not all',
      {
        hint: `its nodes: ${r.nodes.map((x) => x.name).join(', ')}`,
      },
    );
  }
  const all = r.nodes.map((n) => n.name);
  await switchCommands(r.switch.mgmt, [
    ...moveCommands(r, all, 0),
    ...moveCommands(r, nodes, PARTITION_VLAN),
  ]);
  r.partition = [...new Set(nodes)];
  writeCluster(r);
  logEvent(cluster, { event: 'partition', nodes: r.partition });
}

/** Every running node's port back on one VLAN. */
export async function heal(cluster: string): Promise<void> {
  const r = requireCluster(cluster);
  await switchCommands(
    r.switch.mgmt,
    moveCommands(
      r,
      r.nodes.map((n) => n.name),
      0,
    ),
  );
  r.partition = [];
  writeCluster(r);
  logEvent(cluster, { event: 'heal' });
}

/** The Guest of a running node, for exec and ssh. */
export function nodeGuest(cluster: string, node: string): DetachedGuest {
  return attach(nodeOf(requireCluster(cluster), node).vm);
}
