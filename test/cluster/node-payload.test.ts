/**
 * A node's per-boot payload (src/cluster/node-payload.ts): hostname, the cluster's
 * /etc/hosts and the LAN line, in a cpio archive that leaves out directories the
 * image has (so their modes stay), read back with kjx's own cpio reader and
 * cross-checked by GNU cpio.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { CLUSTER_EXAMPLE_YAML } from '../../src/cluster/example.js';
import { parseCluster } from '../../src/cluster/file.js';
import { nodeFiles, nodePayload } from '../../src/cluster/node-payload.js';
import { readCpio } from '../../src/image/cpio.js';

test("n2's payload: its hostname, every node in /etc/hosts, its MAC and address; /etc left out", () => {
  const c = parseCluster(CLUSTER_EXAMPLE_YAML, '/p/kjx-cluster.yaml');
  const cpio = nodePayload(nodeFiles(c, c.nodes[1]!), new Set(['/etc']));
  const entries = readCpio(cpio, 'payload').filter((e) => e.name !== 'TRAILER!!!');
  const byName = new Map(entries.map((e) => [e.name, e]));
  assert.deepEqual([...byName.keys()].sort(), ['etc/hostname', 'etc/hosts', 'etc/kjx', 'etc/kjx/lan']);
  assert.equal(byName.get('etc/hostname')!.data.toString(), 'n2\n');
  assert.match(
    byName.get('etc/hosts')!.data.toString(),
    /^10\.77\.0\.11 n1\n10\.77\.0\.12 n2\n10\.77\.0\.13 n3$/m,
  );
  assert.equal(byName.get('etc/kjx/lan')!.data.toString(), '52:54:00:4b:00:02 10.77.0.12/24\n');
  assert.equal(byName.get('etc/hosts')!.mode & 0o7777, 0o644);
  const gnu = spawnSync('cpio', ['-t', '--quiet'], { input: cpio, encoding: 'utf8' });
  assert.equal(gnu.status, 0, gnu.stderr);
  assert.deepEqual(gnu.stdout.trim().split('\n').sort(), [
    'etc/hostname',
    'etc/hosts',
    'etc/kjx',
    'etc/kjx/lan',
  ]);
});
