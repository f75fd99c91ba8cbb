/**
 * A 3-node cluster of the default image without engines, in real QEMU (TCG) on a real
 * vde_switch, driven through the CLI: every node has its hostname, its address and
 * /etc/hosts from its per-boot payload and pings the others by name over the LAN;
 * `status --json` and `exec` report what runs; `down` leaves no process of the
 * cluster (switch, supervisor, QEMUs, checked by pid). Then `up` again, with kjx
 * SIGKILLed while the nodes boot: the supervisor ends everything it started.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { alive, removeAll, runKjx, spawnKjx, workspace } from '../helpers/kjx.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, ms: number, f: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

interface Status {
  up: boolean;
  supervisorPid: number;
  switch: { pid: number; running: boolean };
  nodes: { name: string; pid: number; address: string; state: string }[];
}

describe('kjx cluster (real QEMU, vde_switch)', () => {
  let ws: string;
  let state: string;
  const pids: number[] = [];
  const opts = () => ({ cwd: ws, env: { KJX_STATE_DIR: state }, timeoutMs: 900_000 });

  before(() => {
    ws = workspace('cluster');
    state = mkdtempSync(join(tmpdir(), 'kjx-cluster-state-'));
    // the default kjx.yaml on its LAN only (etcd has its own file: etcd.test.ts)
    writeFileSync(
      join(ws, 'kjx-cluster.yaml'),
      'name: lab\nsubnet: 10.77.0.0/24\nnodes:\n  - {name: n, spec: kjx.yaml, count: 3, memory: 256}\n',
    );
  });

  after(() => {
    // whatever a failed test left: down, then make sure by pid
    if (existsSync(join(state, 'clusters', 'lab', 'cluster.json'))) runKjx(['cluster', 'down'], opts());
    for (const pid of pids) {
      try {
        if (alive(pid)) process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    removeAll(ws, state);
  });

  test('up boots 3 nodes that ping each other by name; status, exec and down', async () => {
    const up = runKjx(['cluster', 'up', '--accel', 'tcg'], opts());
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /n1\s+\d+\s+10\.77\.0\.11\s+running/);
    const st = runKjx(['cluster', 'status', '--json'], opts());
    assert.equal(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout) as Status;
    pids.push(s.supervisorPid, s.switch.pid, ...s.nodes.map((n) => n.pid));
    assert.equal(s.up, true);
    assert.equal(s.switch.running, true);
    assert.deepEqual(
      s.nodes.map((n) => [n.name, n.address, n.state]),
      [
        ['n1', '10.77.0.11', 'running'],
        ['n2', '10.77.0.12', 'running'],
        ['n3', '10.77.0.13', 'running'],
      ],
    );
    for (const [me, others] of [
      ['n1', ['n2', 'n3']],
      ['n2', ['n1', 'n3']],
      ['n3', ['n1', 'n2']],
    ] as const) {
      const script = `hostname; for h in ${others.join(' ')}; do ping -c 1 -W 10 "$h" | grep -o 'from [0-9.]*' || exit 1; done`;
      const r = runKjx(['cluster', 'exec', me, '--', 'sh', '-c', script], opts());
      assert.equal(r.code, 0, `${me}: ${r.stdout}${r.stderr}`);
      const addr = (n: string) => s.nodes.find((x) => x.name === n)!.address;
      assert.equal(r.stdout, [me, ...others.map((o) => `from ${addr(o)}`)].join('\n') + '\n');
    }
    // the command's own status comes back; an unknown node is a usage error
    assert.equal(runKjx(['cluster', 'exec', 'n2', '--', 'sh', '-c', 'exit 7'], opts()).code, 7);
    const bad = runKjx(['cluster', 'exec', 'n9', '--', 'true'], opts());
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /no node "n9".*\n.*n1, n2, n3/s);

    const down = runKjx(['cluster', 'down'], opts());
    assert.equal(down.code, 0, down.stderr);
    await until('every cluster process to end', 15_000, () => (pids.some(alive) ? undefined : true));
    assert.equal(existsSync(join(state, 'clusters', 'lab', 'cluster.json')), false);
    const events = readFileSync(join(state, 'clusters', 'lab', 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { event: string }).event);
    assert.deepEqual(
      events.filter((e) => e !== 'node-up'),
      ['up', 'down'],
    );
    assert.equal(events.filter((e) => e === 'node-up').length, 3);
  });

  test('a SIGKILL of kjx during up leaves nothing running', async () => {
    const child = spawnKjx(['cluster', 'up', '--accel', 'tcg'], opts());
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const dir = join(state, 'clusters', 'lab');
    // wait until every node's QEMU has started (its VM record has a pid), then kill kjx
    const started = await until('three QEMUs started by the cluster', 300_000, () => {
      const rec = readJson<{ supervisorPid: number; switch: { pid: number } }>(join(dir, 'cluster.json'));
      const vms = ['n1', 'n2', 'n3'].map((n) =>
        readJson<{ pid: number }>(join(state, 'vms', `lab.${n}`, 'vm.json')),
      );
      if (!rec || vms.some((v) => !v || v.pid <= 0)) return undefined;
      return [rec.supervisorPid, rec.switch.pid, ...vms.map((v) => v!.pid)];
    });
    pids.push(...started);
    assert.ok(started.every(alive), `all started: ${started}`);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await until('the supervisor to end the cluster', 15_000, () => (started.some(alive) ? undefined : true));
    assert.ok(!started.some(alive), `left running: ${started.filter(alive)} (kjx said: ${stderr})`);
    // and the next up starts clean from what was left
    const status = runKjx(['cluster', 'status', '--json'], opts());
    if (status.code === 0) assert.equal((JSON.parse(status.stdout) as Status).up, false);
  });
});
