/**
 * Clusters (`npm run bench cluster`): the etcd example of `kjx cluster init` with 3
 * and with 5 nodes, under TCG, through the CLI. Per size:
 *
 * - up to healthy: `kjx cluster up` from its start until every etcd member is
 *   healthy (the image already built; the events log has each part);
 * - nodes ready: the slowest node's boot to ready (parallel boots on shared CPUs);
 * - re-election: from the SIGKILL of the leader's QEMU (`kjx cluster kill`) until a
 *   survivor names another leader, polled with `kjx cluster exec` (resolution: one
 *   poll, ~1-2 s of it the exec itself);
 * - host memory per node: the resident set of each node's QEMU, averaged, after up.
 *
 * And the 3-node docker swarm of src/cluster/example.ts (a manager, two workers):
 * up to every node Ready in the swarm, and the replica restore: a service of 3
 * replicas, one worker killed, until 3 tasks run on the survivors (polled with
 * `docker service ps` over exec, ~2-4 s per poll under TCG).
 *
 * One run each on a shared machine: reported, never asserted.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SWARM_CLUSTER_YAML, SWARM_NODE_SPEC, SWARM_NODE_SPEC_YAML } from '../src/cluster/example.js';
import type { BenchLine } from './build.bench.js';

const ROOT = join(import.meta.dirname, '..');
const KJX = join(ROOT, 'bin', 'kjx.js');

function kjx(ws: string, state: string, args: string[]) {
  const r = spawnSync(process.execPath, [KJX, 'cluster', ...args], {
    cwd: ws,
    env: { ...process.env, CI: '1', KJX_CACHE_DIR: join(ROOT, '.kjx', 'test-cache'), KJX_STATE_DIR: state },
    encoding: 'utf8',
    timeout: 1_800_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** The leader's member id as a survivor's local endpoint reports it ('' without one). */
function leaderSeenBy(ws: string, state: string, node: string): string {
  const r = kjx(ws, state, ['exec', node, '--', 'etcdctl', 'endpoint', 'status', '-w', 'json']);
  // member ids are uint64: compared as text, never through JSON numbers
  const leader = /"leader":(\d+)/.exec(r.stdout)?.[1] ?? '';
  return r.code === 0 && leader !== '0' ? leader : '';
}

async function measure(count: number): Promise<BenchLine[]> {
  const ws = mkdtempSync(join(tmpdir(), `kjx-bench-cluster${count}-`));
  const state = mkdtempSync(join(tmpdir(), `kjx-bench-cluster${count}-state-`));
  const tag = `${count} nodes`;
  try {
    if (kjx(ws, state, ['init']).code !== 0) throw new Error('kjx cluster init failed');
    const file = join(ws, 'kjx-cluster.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('count: 3', `count: ${count}`));
    // the build is not part of up's time
    spawnSync(process.execPath, [KJX, 'build', '-f', 'etcd-node.yaml'], { cwd: ws, stdio: 'ignore' });
    const t0 = performance.now();
    const up = kjx(ws, state, ['up', '--accel', 'tcg']);
    const upS = (performance.now() - t0) / 1000;
    if (up.code !== 0) throw new Error(`kjx cluster up failed: ${up.stderr}`);
    const events = readFileSync(join(state, 'clusters', 'lab', 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; seconds?: number });
    const readyS = Math.max(...events.filter((e) => e.event === 'node-up').map((e) => e.seconds ?? 0));
    const healthyS = events.find((e) => e.event === 'healthy')?.seconds ?? Number.NaN;
    const status = JSON.parse(kjx(ws, state, ['status', '--json']).stdout) as {
      nodes: { name: string; pid: number; address: string }[];
    };
    const rss = status.nodes.map((n) => rssMiB(n.pid));
    // who leads: the member whose id is the leader's, by its client URL's address
    const all = kjx(ws, state, [
      'exec',
      'n1',
      '--',
      'etcdctl',
      'endpoint',
      'status',
      '--cluster',
      '-w',
      'json',
    ]);
    const leader = /"leader":(\d+)/.exec(all.stdout)?.[1] ?? '';
    const entries = [...all.stdout.matchAll(/"Endpoint":"https:\/\/([\d.]+):\d+".*?"member_id":(\d+)/g)];
    const leaderAddr = entries.find((e) => e[2] === leader)?.[1];
    const victim = status.nodes.find((n) => n.address === leaderAddr);
    if (!victim) throw new Error(`no leader found in ${all.stdout}${all.stderr}`);
    const survivor = status.nodes.find((n) => n !== victim)!.name;
    const k0 = performance.now();
    kjx(ws, state, ['kill', victim.name]);
    let electS = Number.NaN;
    while ((performance.now() - k0) / 1000 < 120) {
      const seen = leaderSeenBy(ws, state, survivor);
      if (seen && seen !== leader) {
        electS = (performance.now() - k0) / 1000;
        break;
      }
    }
    kjx(ws, state, ['down']);
    return [
      { name: `cluster ${tag}: up to etcd healthy (built image)`, value: upS, unit: 's' },
      { name: `cluster ${tag}: slowest node boot to ready`, value: readyS, unit: 's' },
      { name: `cluster ${tag}: etcd healthy after the nodes were ready`, value: healthyS, unit: 's' },
      {
        name: `cluster ${tag}: new etcd leader after the leader was killed`,
        value: electS,
        unit: 's',
        note: `killed ${victim.name}; polled from ${survivor} (election timeout 5 s)`,
      },
      memoryLine(`cluster ${tag}`, rss),
    ];
  } finally {
    kjx(ws, state, ['down']);
    rmSync(ws, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  }
}

/** Node names with a Running task of service `web`, as the manager lists them. */
function runningTasks(ws: string, state: string): string[] {
  const r = kjx(ws, state, [
    'exec',
    'm',
    '--',
    'docker',
    'service',
    'ps',
    'web',
    '--filter',
    'desired-state=running',
    '--format',
    '{{.Node}} {{.CurrentState}}',
  ]);
  return r.stdout
    .split('\n')
    .filter((l) => / Running /.test(l))
    .map((l) => l.split(' ')[0]!);
}

/** The swarm part alone (also run by benchCluster). */
export async function measureSwarm(): Promise<BenchLine[]> {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-bench-swarm-'));
  const state = mkdtempSync(join(tmpdir(), 'kjx-bench-swarm-state-'));
  try {
    writeFileSync(join(ws, 'kjx-cluster.yaml'), SWARM_CLUSTER_YAML);
    writeFileSync(join(ws, SWARM_NODE_SPEC), SWARM_NODE_SPEC_YAML);
    spawnSync(process.execPath, [KJX, 'build', '-f', SWARM_NODE_SPEC], { cwd: ws, stdio: 'ignore' });
    const t0 = performance.now();
    const up = kjx(ws, state, ['up', '--accel', 'tcg', '--timeout', '1200']);
    const upS = (performance.now() - t0) / 1000;
    if (up.code !== 0) throw new Error(`kjx cluster up failed: ${up.stderr}`);
    const events = readFileSync(join(state, 'clusters', 'swarm', 'events.jsonl'), 'utf8');
    const formS = Number(/"engine":"docker","seconds":([\d.]+)/.exec(events)?.[1]);
    const status = JSON.parse(kjx(ws, state, ['status', '--json']).stdout) as { nodes: { pid: number }[] };
    const rss = status.nodes.map((n) => rssMiB(n.pid));
    for (const n of ['m', 'w1', 'w2'])
      kjx(ws, state, ['exec', n, '--', 'docker', 'load', '-q', '-i', '/usr/lib/kjx/check-data/image.tar']);
    kjx(ws, state, ['exec', 'm', '--', 'docker', 'network', 'create', '-d', 'overlay', 'appnet']);
    const s0 = performance.now();
    kjx(ws, state, [
      'exec',
      'm',
      '--',
      'docker',
      'service',
      'create',
      '--detach',
      '--no-resolve-image',
      '--name',
      'web',
      '--replicas',
      '3',
      '--network',
      'appnet',
      'kjx/check:latest',
      'sh',
      '-c',
      'exec busybox httpd -f -p 8080 -h /tmp',
    ]);
    let runS = Number.NaN;
    while ((performance.now() - s0) / 1000 < 600) {
      if (runningTasks(ws, state).length === 3) {
        runS = (performance.now() - s0) / 1000;
        break;
      }
    }
    const k0 = performance.now();
    kjx(ws, state, ['kill', 'w1']);
    let restoreS = Number.NaN;
    while ((performance.now() - k0) / 1000 < 600) {
      const on = runningTasks(ws, state);
      if (on.length === 3 && !on.includes('w1')) {
        restoreS = (performance.now() - k0) / 1000;
        break;
      }
    }
    return [
      { name: 'swarm 3 nodes: up to every node Ready (built image)', value: upS, unit: 's' },
      { name: 'swarm 3 nodes: init and joins to all Ready, after boot', value: formS, unit: 's' },
      { name: 'swarm 3 nodes: service of 3 replicas to 3 running', value: runS, unit: 's' },
      {
        name: 'swarm 3 nodes: replicas back to 3 after a worker was killed',
        value: restoreS,
        unit: 's',
        note: 'killed w1; docker service ps polled on the manager',
      },
      memoryLine('swarm 3 nodes', rss),
    ];
  } finally {
    kjx(ws, state, ['down']);
    rmSync(ws, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  }
}

/** The mean QEMU RSS of a cluster's nodes, with its spread. */
function memoryLine(what: string, rss: number[]): BenchLine {
  return {
    name: `${what}: host memory per node (QEMU RSS, mean)`,
    value: rss.reduce((a, b) => a + b, 0) / rss.length,
    unit: 'MiB',
    note: `min ${Math.min(...rss).toFixed(0)}, max ${Math.max(...rss).toFixed(0)}`,
  };
}

export async function benchCluster(): Promise<BenchLine[]> {
  return [...(await measure(3)), ...(await measure(5)), ...(await measureSwarm())];
}
