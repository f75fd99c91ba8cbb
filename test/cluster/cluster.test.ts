/**
 * A 3-node cluster of the default image without engines, in real QEMU (TCG) on a real
 * vde_switch, driven through the CLI: every node has its hostname, its address and
 * /etc/hosts from its per-boot payload and pings the others by name over the LAN;
 * `status --json` and `exec` report what runs; `ssh` runs a script piped to it,
 * with the host key pinned; `down` leaves no process of the cluster (switch,
 * supervisor, QEMUs, checked by pid). Then `up` again, with kjx
 * interrupted (SIGINT, as Ctrl-C) or SIGKILLed while the nodes boot: the supervisor
 * ends everything it started.
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

  test('up boots 3 nodes that ping each other by name; status and exec', () => {
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
  });

  test('ssh reads a script from a pipe (no TTY): its output plain, its exit status back; the host key is pinned', () => {
    const r = runKjx(['cluster', 'ssh', 'n1'], { ...opts(), input: 'hostname; id -u; exit 3\n' });
    assert.equal(r.code, 3, r.stderr);
    // no PTY: nothing echoed, no carriage returns, no prompt
    assert.equal(r.stdout, 'n1\n0\n');
    const bad = runKjx(['cluster', 'ssh', 'n9'], { ...opts(), input: 'true\n' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no node "n9".*\n.*n1, n2, n3/s);
    // the host key is the one n1 printed while booting: a different one is refused, without a prompt
    const recPath = join(state, 'vms', 'lab.n1', 'vm.json');
    const saved = readFileSync(recPath, 'utf8');
    const forged = JSON.parse(saved) as { hostKeys: { type: string; sha256: string }[] };
    assert.ok(forged.hostKeys.length > 0, 'no host key pinned for n1');
    forged.hostKeys = [{ type: 'ed25519', sha256: 'A'.repeat(43) }];
    writeFileSync(recPath, JSON.stringify(forged));
    try {
      const refused = runKjx(['cluster', 'ssh', 'n1'], { ...opts(), input: 'echo in\n' });
      assert.equal(refused.code, 255);
      assert.match(refused.stderr, /not the pinned/);
      assert.doesNotMatch(refused.stdout, /in/);
    } finally {
      writeFileSync(recPath, saved);
    }
  });

  test("netem: delay each way on a node's link shows in ping times, loss 100% cuts it, 0 0 restores it", () => {
    const rtt = () => {
      const r = runKjx(['cluster', 'exec', 'n1', '--', 'ping', '-c', '3', '-W', '5', 'n2'], opts());
      const m = /min\/avg\/max = ([\d.]+)\//.exec(r.stdout);
      return { code: r.code, min: m ? Number(m[1]) : Number.NaN };
    };
    assert.equal(runKjx(['cluster', 'netem', 'n2', '--delay', '150'], opts()).code, 0);
    const slow = rtt();
    assert.equal(slow.code, 0);
    assert.ok(slow.min >= 300, `round trip ${slow.min} ms with 150 ms each way`);
    assert.match(runKjx(['cluster', 'status'], opts()).stdout, /n2 .*delay 150ms loss 0%/);
    assert.equal(runKjx(['cluster', 'netem', 'n2', '--loss', '100'], opts()).code, 0);
    assert.notEqual(rtt().code, 0, 'no reply with every packet lost');
    assert.equal(runKjx(['cluster', 'netem', 'n2'], opts()).code, 0);
    const back = rtt();
    assert.equal(back.code, 0);
    assert.ok(back.min < 300, `round trip ${back.min} ms once the delay is off`);
    const bad = runKjx(['cluster', 'netem', 'n2', '--loss', '120'], opts());
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--loss a percentage from 0 to 100/);
  });

  test('partition: the cut-off node reaches no one, the rest each other; heal ends it', () => {
    const ping = (from: string, to: string) =>
      runKjx(['cluster', 'exec', from, '--', 'ping', '-c', '1', '-W', '3', to], opts()).code;
    assert.equal(runKjx(['cluster', 'partition', 'n3'], opts()).code, 0);
    assert.notEqual(ping('n1', 'n3'), 0);
    assert.notEqual(ping('n3', 'n2'), 0);
    assert.equal(ping('n1', 'n2'), 0);
    assert.equal(runKjx(['cluster', 'heal'], opts()).code, 0);
    assert.equal(ping('n1', 'n3'), 0);
    const all = runKjx(['cluster', 'partition', 'n1', 'n2', 'n3'], opts());
    assert.notEqual(all.code, 0);
    assert.match(all.stderr, /name at least one node, not all/);
  });

  test('kill is a power cut of one node; start boots it again onto the LAN', () => {
    const before = JSON.parse(runKjx(['cluster', 'status', '--json'], opts()).stdout) as Status;
    const old = before.nodes.find((n) => n.name === 'n2')!.pid;
    assert.equal(runKjx(['cluster', 'kill', 'n2'], opts()).code, 0);
    assert.equal(alive(old), false);
    assert.match(runKjx(['cluster', 'status'], opts()).stdout, /n2\s+\d+\s+10\.77\.0\.12\s+killed/);
    assert.notEqual(runKjx(['cluster', 'kill', 'n2'], opts()).code, 0);
    const start = runKjx(['cluster', 'start', 'n2'], opts());
    assert.equal(start.code, 0, start.stderr);
    const after = JSON.parse(runKjx(['cluster', 'status', '--json'], opts()).stdout) as Status;
    const pid = after.nodes.find((n) => n.name === 'n2')!.pid;
    pids.push(pid);
    assert.notEqual(pid, old);
    const r = runKjx(['cluster', 'exec', 'n1', '--', 'ping', '-c', '1', '-W', '10', 'n2'], opts());
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test('down leaves no process of the cluster; the events log keeps what happened', async () => {
    const rec = JSON.parse(readFileSync(join(state, 'clusters', 'lab', 'cluster.json'), 'utf8')) as {
      nodes: { link: { switchPid: number; filterPid: number } }[];
    };
    const s = JSON.parse(runKjx(['cluster', 'status', '--json'], opts()).stdout) as Status;
    const running = [
      s.supervisorPid,
      s.switch.pid,
      ...s.nodes.map((n) => n.pid),
      ...rec.nodes.flatMap((n) => [n.link.switchPid, n.link.filterPid]),
    ];
    assert.equal(running.length, 11);
    assert.ok(running.every(alive), 'all running before down');
    pids.push(...running);
    const down = runKjx(['cluster', 'down'], opts());
    assert.equal(down.code, 0, down.stderr);
    await until('every cluster process to end', 15_000, () => (pids.some(alive) ? undefined : true));
    assert.equal(existsSync(join(state, 'clusters', 'lab', 'cluster.json')), false);
    const events = readFileSync(join(state, 'clusters', 'lab', 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { event: string }).event);
    assert.deepEqual(
      events.filter((e) => e !== 'node-up' && e !== 'netem'),
      ['up', 'partition', 'heal', 'kill', 'start', 'down'],
    );
    assert.equal(events.filter((e) => e === 'netem').length, 3);
    assert.equal(events.filter((e) => e === 'node-up').length, 3);
  });

  for (const signal of ['SIGINT', 'SIGKILL'] as const) {
    test(`a ${signal} of kjx during up leaves nothing running`, async () => {
      const child = spawnKjx(['cluster', 'up', '--accel', 'tcg'], opts());
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
      });
      const dir = join(state, 'clusters', 'lab');
      // wait until every node's QEMU has started (its VM record has a pid), then signal kjx
      const started = await until('three QEMUs started by the cluster', 300_000, () => {
        const rec = readJson<{
          supervisorPid: number;
          switch: { pid: number };
          nodes: { link: { switchPid: number; filterPid: number } }[];
        }>(join(dir, 'cluster.json'));
        const vms = ['n1', 'n2', 'n3'].map((n) =>
          readJson<{ pid: number }>(join(state, 'vms', `lab.${n}`, 'vm.json')),
        );
        if (!rec || vms.some((v) => !v || v.pid <= 0)) return undefined;
        const links = rec.nodes.flatMap((n) => [n.link.switchPid, n.link.filterPid]);
        const all = [rec.supervisorPid, rec.switch.pid, ...links, ...vms.map((v) => v!.pid)];
        // the records of the run before stay until this up clears them: only live pids count
        return all.length === 11 && all.every(alive) ? all : undefined;
      });
      pids.push(...started);
      child.kill(signal);
      await new Promise((r) => child.once('exit', r));
      await until('the supervisor to end the cluster', 15_000, () =>
        started.some(alive) ? undefined : true,
      );
      assert.ok(!started.some(alive), `left running: ${started.filter(alive)} (kjx said: ${stderr})`);
      // what is left is a record of a cluster that is not up; the next up clears it
      const status = runKjx(['cluster', 'status', '--json'], opts());
      assert.equal(status.code, 0, status.stderr);
      assert.equal((JSON.parse(status.stdout) as Status).up, false);
    });
  }
});
