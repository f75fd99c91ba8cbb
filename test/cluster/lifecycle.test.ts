/**
 * What `kjx cluster` refuses before it starts anything (src/cluster/lifecycle.ts):
 * engines whose component a spec lacks, docker nodes without a manager, and
 * commands on a cluster that is not up.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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

test("a spec without the engine's component, or a swarm without a manager, is refused before any boot", async () => {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-cluster-unit-ws-'));
  writeFileSync(join(ws, 'kjx.yaml'), 'name: plain\n');
  const up = (text: string) =>
    clusterUp(parseCluster(text, join(ws, 'kjx-cluster.yaml')), {
      accel: 'tcg',
      warn: () => {},
      timeoutS: 1,
      silenceS: 0,
    });
  await assert.rejects(
    up('name: lab\nnodes: [{name: n, count: 2, engines: [docker]}]\n'),
    usage(/node n1 runs docker, but its spec .*kjx\.yaml has no docker component/),
  );
  // a swarm needs a manager to initialise it
  writeFileSync(join(ws, 'docker.yaml'), 'name: d\ncomponents: [busybox, runit, dropbear, docker]\n');
  await assert.rejects(
    up('name: lab\nnodes: [{name: n, spec: docker.yaml, count: 2, engines: [docker]}]\n'),
    usage(/the docker nodes of .*kjx-cluster\.yaml have no manager to initialise their swarm/),
  );
  await assert.rejects(
    up('name: lab\nnodes: [{name: n, count: 2, engines: [etcd]}]\n'),
    usage(/node n1 runs etcd, but its spec .*kjx\.yaml has no etcd component/),
  );
  assert.deepEqual(readdirSync(state), []);
  rmSync(ws, { recursive: true, force: true });
});

test('status, exec and down of a cluster that is not up: a usage error saying how to start it', async () => {
  assert.throws(() => clusterStatus('lab'), usage(/cluster "lab" is not up/));
  assert.throws(() => nodeGuest('lab', 'n1'), usage(/cluster "lab" is not up/));
  await assert.rejects(clusterDown('lab'), usage(/cluster "lab" is not up/));
});
