/**
 * The cluster file (src/cluster/file.ts): nodes expanded from groups with their
 * names, addresses, MACs and switch ports in file order; `kjx cluster init`'s
 * example read as it is; every bad input a SPEC_INVALID or SPEC_SYNTAX error at
 * file:line:col with a hint.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_EXAMPLE_YAML, EXAMPLE_NODE_SPEC_YAML } from '../../src/cluster/example.js';
import { hostsFile, parseCluster } from '../../src/cluster/file.js';
import { guestServices, withBefore } from '../../src/guest/services.js';
import { planComponents } from '../../src/plan/components.js';
import { parseSpec } from '../../src/spec/load.js';
import { isKjxError } from '../../src/util/errors.js';

const F = '/p/kjx-cluster.yaml';

function fails(text: string, code: string, message: RegExp): void {
  assert.throws(
    () => parseCluster(text, F),
    (e: unknown) => {
      assert.ok(isKjxError(e), String(e));
      assert.equal(e.code, code);
      assert.match(e.message, message);
      assert.ok(e.hint, 'a hint');
      return true;
    },
  );
}

test('the init example: three etcd nodes n1..n3 from ./etcd-node.yaml with .11-.13, MACs and ports in order', () => {
  const c = parseCluster(CLUSTER_EXAMPLE_YAML, F);
  assert.equal(c.name, 'lab');
  assert.deepEqual(
    c.nodes.map((n) => [n.name, n.spec, n.address, n.prefix, n.mac, n.port, n.engines]),
    [
      ['n1', '/p/etcd-node.yaml', '10.77.0.11', 24, '52:54:00:4b:00:01', 1, ['etcd']],
      ['n2', '/p/etcd-node.yaml', '10.77.0.12', 24, '52:54:00:4b:00:02', 2, ['etcd']],
      ['n3', '/p/etcd-node.yaml', '10.77.0.13', 24, '52:54:00:4b:00:03', 3, ['etcd']],
    ],
  );
  assert.equal(hostsFile(c), '127.0.0.1 localhost\n10.77.0.11 n1\n10.77.0.12 n2\n10.77.0.13 n3\n');
});

test('the example node spec is a valid kjx.yaml with the etcd component, its tracer going before etcd', () => {
  const spec = parseSpec(EXAMPLE_NODE_SPEC_YAML, '/p/etcd-node.yaml');
  assert.deepEqual(spec.components, ['busybox', 'runit', 'dropbear', 'libbpf-tools', 'etcd']);
  const services = withBefore([...guestServices(spec), ...planComponents(spec).services]);
  assert.deepEqual(services.find((s) => s.name === 'etcd')?.spec.needs, ['tracer']);
  assert.equal(services.find((s) => s.name === 'tracer')?.spec.ready.kind, 'signal');
});

test('groups: a count of 1 keeps the name, specs resolve against the file, defaults fill in', () => {
  const c = parseCluster(
    'name: x\nsubnet: 192.168.5.0/28\nnodes:\n  - {name: mgr, spec: ../m/kjx.yaml, role: manager}\n  - {name: w, count: 2}\n',
    F,
  );
  assert.deepEqual(
    c.nodes.map((n) => [n.name, n.spec, n.role, n.address]),
    [
      ['mgr', '/m/kjx.yaml', 'manager', '192.168.5.11'],
      ['w1', '/p/kjx.yaml', 'member', '192.168.5.12'],
      ['w2', '/p/kjx.yaml', 'member', '192.168.5.13'],
    ],
  );
});

test('bad inputs: each at file:line:col', () => {
  fails('name: lab\nnodes: []\n', 'SPEC_INVALID', /^\/p\/kjx-cluster\.yaml:2:8: nodes: /);
  fails('name: Lab\nnodes: [{name: n}]\n', 'SPEC_INVALID', /:1:7: name: /);
  fails('name: lab\nnodes:\n  - name: n\n    cont: 3\n', 'SPEC_INVALID', /:4:5: nodes\[0\]\.cont/);
  fails(
    'name: lab\nnodes:\n  - {name: n, engines: [k3s]}\n',
    'SPEC_INVALID',
    /:3:25: nodes\[0\]\.engines\[0\]: expected one of etcd, docker/,
  );
  fails(
    'name: lab\nsubnet: 10.77.0.1/24\nnodes: [{name: n}]\n',
    'SPEC_INVALID',
    /:2:9: subnet: 10\.77\.0\.1 has host bits/,
  );
  fails(
    'name: lab\nsubnet: 10.77.0.0/30\nnodes: [{name: n}]\n',
    'SPEC_INVALID',
    /:2:9: subnet: an IPv4 subnet with a prefix/,
  );
  fails(
    'name: lab\nsubnet: 10.77.0.0/28\nnodes: [{name: n, count: 5}]\n',
    'SPEC_INVALID',
    /room for 4 nodes .* has 5/,
  );
  fails('name: lab\nsubnet: 300.1.0.0/16\nnodes: [{name: n}]\n', 'SPEC_INVALID', /:2:9: subnet/);
  fails(
    'name: lab\nnodes:\n  - {name: n, count: 2}\n  - {name: n1}\n',
    'SPEC_INVALID',
    /:4:12: nodes\[1\]\.name: node name "n1" is also a node of nodes\[0\]/,
  );
  fails('name: lab\nnodes:\n  - name: n\n   count: 2\n', 'SPEC_SYNTAX', /:\d+:\d+/);
});
