/**
 * The engines of a cluster's nodes, host side: what each needs in a node's image,
 * what it adds to a node's per-boot payload, and when it is healthy.
 *
 * etcd (the `etcd` component, src/components/etcd.ts): the nodes with `engines:
 * [etcd]` are the members. Each gets ETCD_* settings naming every member's peer
 * URL (https on the LAN, port 2380; clients on 2379 and on 127.0.0.1), the
 * cluster's CA, and its own key and certificate (ca.ts). Timeouts are raised for
 * emulated CPUs: under TCG a 100 ms heartbeat is missed often enough to start
 * needless elections.
 */
import { KjxError } from '../util/errors.js';
import type { DetachedGuest } from '../vm/detached.js';
import { nodeCert } from './ca.js';
import type { Cluster, ClusterNode } from './file.js';
import type { NodeFile } from './node-payload.js';

/** Where the etcd component reads a node's settings (src/components/etcd.ts, ETCD_CONF). */
const ETCD_CONF = '/etc/kjx/etcd';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

/** The component each engine needs in a node's spec. */
const COMPONENT_OF = { etcd: 'etcd', docker: 'docker' } as const;

/**
 * USAGE unless each node's spec has the component of every engine it runs (an
 * engine kjx does not know never gets here: the cluster file's schema refuses it).
 */
export function checkEngines(c: Cluster, componentsOf: (spec: string) => readonly string[]): void {
  for (const n of c.nodes) {
    for (const e of n.engines) {
      const need = COMPONENT_OF[e];
      if (!componentsOf(n.spec).includes(need)) {
        throw new KjxError(
          'USAGE',
          `node ${n.name} runs ${e}, but its spec ${n.spec} has no ${need} component`,
          {
            hint: `add ${need} to \`components:\` in ${n.spec}`,
          },
        );
      }
    }
  }
}

export function etcdMembers(c: Cluster): ClusterNode[] {
  return c.nodes.filter((n) => n.engines.includes('etcd'));
}

/**
 * The ETCD_* settings of one member. `state` is `new` for the cluster's first boot
 * and `existing` for a member that starts again (it rejoins under the same ID).
 */
export function etcdEnv(c: Cluster, n: ClusterNode, state: 'new' | 'existing'): string {
  const peer = (m: ClusterNode) => `https://${m.address}:${ETCD_PEER_PORT}`;
  const vars: [string, string][] = [
    ['ETCD_NAME', n.name],
    [
      'ETCD_INITIAL_CLUSTER',
      etcdMembers(c)
        .map((m) => `${m.name}=${peer(m)}`)
        .join(','),
    ],
    ['ETCD_INITIAL_CLUSTER_STATE', state],
    ['ETCD_INITIAL_CLUSTER_TOKEN', `kjx-${c.name}`],
    ['ETCD_LISTEN_PEER_URLS', peer(n)],
    ['ETCD_INITIAL_ADVERTISE_PEER_URLS', peer(n)],
    [
      'ETCD_LISTEN_CLIENT_URLS',
      `https://${n.address}:${ETCD_CLIENT_PORT},https://127.0.0.1:${ETCD_CLIENT_PORT}`,
    ],
    ['ETCD_ADVERTISE_CLIENT_URLS', `https://${n.address}:${ETCD_CLIENT_PORT}`],
    ['ETCD_HEARTBEAT_INTERVAL', '500'],
    ['ETCD_ELECTION_TIMEOUT', '5000'],
    ['ETCD_CERT_FILE', `${ETCD_CONF}/node.crt`],
    ['ETCD_KEY_FILE', `${ETCD_CONF}/node.key`],
    ['ETCD_TRUSTED_CA_FILE', `${ETCD_CONF}/ca.crt`],
    ['ETCD_CLIENT_CERT_AUTH', 'true'],
    ['ETCD_PEER_CERT_FILE', `${ETCD_CONF}/node.crt`],
    ['ETCD_PEER_KEY_FILE', `${ETCD_CONF}/node.key`],
    ['ETCD_PEER_TRUSTED_CA_FILE', `${ETCD_CONF}/ca.crt`],
    ['ETCD_PEER_CLIENT_CERT_AUTH', 'true'],
  ];
  return vars.map(([k, v]) => `${k}=${v}\n`).join('');
}

/** What a node's engines add to its per-boot payload (keys 0600). */
export async function engineFiles(
  c: Cluster,
  n: ClusterNode,
  dir: string,
  state: 'new' | 'existing',
): Promise<NodeFile[]> {
  if (!n.engines.includes('etcd')) return [];
  const cert = await nodeCert(dir, c.name, n);
  return [
    { path: `${ETCD_CONF}/env`, data: etcdEnv(c, n, state), mode: 0o600 },
    { path: `${ETCD_CONF}/ca.crt`, data: cert.ca, mode: 0o644 },
    { path: `${ETCD_CONF}/node.crt`, data: cert.cert, mode: 0o644 },
    { path: `${ETCD_CONF}/node.key`, data: cert.key, mode: 0o600 },
  ];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run a command in a guest and keep its output (bounded). */
export async function capture(
  g: DetachedGuest,
  argv: string[],
  timeoutS = 60,
): Promise<{ status: number; out: string }> {
  const { PassThrough } = await import('node:stream');
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (b: Buffer) => chunks.push(b));
  const r = await g.run({ argv }, { stdout: sink, stderr: sink, timeoutS, silenceS: 0 });
  return {
    status: r.outcome === 'exited' ? (r.status ?? -1) : -1,
    out: Buffer.concat(chunks).toString('utf8'),
  };
}

/** Wait until every member reports healthy (`etcdctl endpoint health --cluster` on `g`). */
export async function waitEtcdHealthy(g: DetachedGuest, members: number, timeoutS: number): Promise<number> {
  const t0 = performance.now();
  let last = '';
  while ((performance.now() - t0) / 1000 < timeoutS) {
    const r = await capture(g, ['etcdctl', 'endpoint', 'health', '--cluster'], 60);
    last = r.out;
    const healthy = (r.out.match(/ is healthy/g) ?? []).length;
    if (r.status === 0 && healthy >= members) return (performance.now() - t0) / 1000;
    await sleep(1000);
  }
  throw new KjxError('VM_TIMEOUT', `etcd did not become healthy on every member within ${timeoutS} s`, {
    details: [last.trim()],
    hint: 'see the etcd log of a node: kjx cluster exec NODE -- cat /var/log/etcd/current',
  });
}
