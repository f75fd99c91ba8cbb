/**
 * What `kjx cluster` refuses before it starts anything (src/cluster/lifecycle.ts):
 * engines this kjx does not run yet, and commands on a cluster that is not up.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseCluster } from '../../src/cluster/file.js';
import { clusterDown, clusterStatus, clusterUp, nodeGuest } from '../../src/cluster/lifecycle.js';
import { isKjxError } from '../../src/util/errors.js';

const state = mkdtempSync(join(tmpdir(), 'kjx-cluster-unit-'));
const saved = process.env.KJX_STATE_DIR;
process.env.KJX_STATE_DIR = state;
after(() => {
  if (saved === undefined) delete process.env.KJX_STATE_DIR;
  else process.env.KJX_STATE_DIR = saved;
});

const usage = (re: RegExp) => (e: unknown) =>
  isKjxError(e) && e.code === 'USAGE' && re.test(e.message) && !!e.hint;

test('an engine this kjx does not run yet is refused before anything starts', async () => {
  const c = parseCluster('name: lab\nnodes: [{name: n, count: 2, engines: [etcd]}]\n', '/p/kjx-cluster.yaml');
  await assert.rejects(
    clusterUp(c, { accel: 'tcg', warn: () => {}, timeoutS: 1, silenceS: 0 }),
    usage(/node n1: engines \(etcd\)/),
  );
  assert.deepEqual(readdirSync(state), []);
});

test('status, exec and down of a cluster that is not up: a usage error saying how to start it', async () => {
  assert.throws(() => clusterStatus('lab'), usage(/cluster "lab" is not up/));
  assert.throws(() => nodeGuest('lab', 'n1'), usage(/cluster "lab" is not up/));
  await assert.rejects(clusterDown('lab'), usage(/cluster "lab" is not up/));
});
