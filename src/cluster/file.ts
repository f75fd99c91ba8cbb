/**
 * The cluster file, `kjx-cluster.yaml` (docs/cluster.md): a name, a private IPv4
 * subnet and a list of node groups, each a kjx spec with a count, memory, role and
 * engines. Read like kjx.yaml (YAML 1.2, a zod schema, every problem at
 * file:line:col), then expanded into the nodes that run: names (`n1..nK` for a
 * group with a count above one), static addresses and MACs, in file order.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { parseYamlInput } from '../spec/load.js';
import { type FieldProblem, problemsError, withSource } from '../spec/positions.js';
import { KjxError } from '../util/errors.js';

export const CLUSTER_FILE = 'kjx-cluster.yaml';
const HINT = 'every field of kjx-cluster.yaml is described in docs/cluster.md';

/** A host name label: it becomes the node's hostname and its name in /etc/hosts. */
const LABEL = /^[a-z](?:[a-z0-9-]{0,22}[a-z0-9])?$/;

export const ENGINES = ['etcd', 'docker'] as const;
export type Engine = (typeof ENGINES)[number];

const nodeGroupSchema = z
  .strictObject({
    name: z.string().regex(LABEL, 'a lowercase host name: letters, digits and "-", at most 24'),
    spec: z
      .string()
      .min(1)
      .default('kjx.yaml')
      .describe('The kjx.yaml this node boots, relative to the cluster file.'),
    count: z.number().int().min(1).max(32).default(1),
    memory: z
      .number()
      .int()
      .min(64)
      .max(65536)
      .optional()
      .describe('Guest memory in MiB (default: what the spec wants).'),
    role: z.enum(['manager', 'member']).default('member'),
    engines: z.array(z.enum(ENGINES)).default([]),
  })
  .describe('A group of nodes booted from one spec.');

export const clusterFileSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,14}$/, 'a lowercase name: letters, digits and "-", at most 15'),
  subnet: z
    .string()
    .regex(/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\/\d{1,2}$/, 'an IPv4 subnet such as 10.77.0.0/24')
    .default('10.77.0.0/24'),
  nodes: z.array(nodeGroupSchema).min(1),
});

export type ClusterFile = z.output<typeof clusterFileSchema>;

/** One node as it runs. */
export interface ClusterNode {
  name: string;
  /** Absolute path of its kjx.yaml. */
  spec: string;
  memoryMiB?: number;
  role: 'manager' | 'member';
  engines: Engine[];
  /** Its address on the cluster LAN, and the LAN's prefix length. */
  address: string;
  prefix: number;
  /** The MAC of its LAN NIC (the guest finds the NIC by it). */
  mac: string;
  /** Its port on the cluster's switch (1-based, in file order). */
  port: number;
}

export interface Cluster {
  name: string;
  file: string;
  subnet: string;
  nodes: ClusterNode[];
}

/** Addresses below this offset in the subnet are left free (a gateway, if one is ever added). */
const FIRST_HOST = 10;

function ipToInt(ip: string): number | undefined {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Read and expand a cluster file. @throws KjxError SPEC_NOT_FOUND, SPEC_SYNTAX or SPEC_INVALID */
export function loadCluster(path: string): Cluster {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new KjxError('SPEC_NOT_FOUND', `cluster file not found: ${path}`, {
      hint: 'run `kjx cluster init` to write a commented example, or pass -f FILE',
      cause: e,
    });
  }
  return parseCluster(text, path);
}

/** Parse cluster file text; `file` names it in messages and anchors relative spec paths. */
export function parseCluster(text: string, file: string): Cluster {
  const value = withSource(parseYamlInput(text, file, clusterFileSchema, HINT), { file, text });
  const source = { file, text };
  const problems: FieldProblem[] = [];
  const [net, prefixText] = value.subnet.split('/') as [string, string];
  const prefix = Number(prefixText);
  const base = ipToInt(net);
  if (base === undefined || prefix < 8 || prefix > 29) {
    problems.push({ source, path: ['subnet'], message: 'an IPv4 subnet with a prefix from /8 to /29' });
  } else if (((base >>> 0) & ~(0xffffffff << (32 - prefix))) !== 0) {
    problems.push({ source, path: ['subnet'], message: `${net} has host bits set for /${prefix}` });
  }
  const nodes: ClusterNode[] = [];
  const seen = new Map<string, number>();
  value.nodes.forEach((g, gi) => {
    for (let k = 1; k <= g.count; k++) {
      const name = g.count > 1 ? `${g.name}${k}` : g.name;
      if (seen.has(name)) {
        problems.push({
          source,
          path: ['nodes', gi, 'name'],
          message: `node name "${name}" is also a node of nodes[${seen.get(name)}]`,
        });
        continue;
      }
      seen.set(name, gi);
      const port = nodes.length + 1;
      nodes.push({
        name,
        spec: resolve(dirname(file), g.spec),
        ...(g.memory ? { memoryMiB: g.memory } : {}),
        role: g.role,
        engines: g.engines,
        address: '',
        prefix,
        mac: `52:54:00:4b:00:${port.toString(16).padStart(2, '0')}`,
        port,
      });
    }
  });
  if (base !== undefined && problems.length === 0) {
    const size = 2 ** (32 - prefix);
    if (FIRST_HOST + nodes.length >= size - 1) {
      problems.push({
        source,
        path: ['subnet'],
        message: `/${prefix} has room for ${Math.max(0, size - 2 - FIRST_HOST)} nodes (from .${FIRST_HOST + 1}), the file has ${nodes.length}`,
      });
    }
    for (const n of nodes) n.address = intToIp(base + FIRST_HOST + n.port);
  }
  if (problems.length > 0) throw problemsError(problems, HINT);
  return { name: value.name, file, subnet: value.subnet, nodes };
}

/** /etc/hosts of every node: loopback, then each node by name. */
export function hostsFile(c: Cluster): string {
  const lines = ['127.0.0.1 localhost', ...c.nodes.map((n) => `${n.address} ${n.name}`)];
  return `${lines.join('\n')}\n`;
}
