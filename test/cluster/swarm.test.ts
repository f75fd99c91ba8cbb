/**
 * Docker swarm on a 3-node kjx cluster in real QEMU (TCG) on a real vde_switch: the
 * manager initialises the swarm, kjx hands the join tokens to the two workers over
 * exec, an overlay network spans the nodes, a replicated service of 3 runs one task
 * per node; a container on one node reaches the service by name over the overlay;
 * after a worker is killed the replicas return to 3 on the survivors. On every node
 * dockerd started after the tracer was ready. Docker under TCG is slow: one cluster
 * for the whole file, ended in `after` (checked by pid).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SWARM_CLUSTER_YAML, SWARM_NODE_SPEC, SWARM_NODE_SPEC_YAML } from '../../src/cluster/example.js';
import { alive, type KjxResult, removeAll, runKjx } from '../helpers/kjx.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const IMAGE = 'kjx/check:latest';

describe('docker swarm on a kjx cluster (real QEMU, vde_switch)', () => {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-swarm-'));
  const state = mkdtempSync(join(tmpdir(), 'kjx-swarm-state-'));
  const pids: number[] = [];
  const kjx = (...args: string[]): KjxResult =>
    runKjx(['cluster', ...args], { cwd: ws, env: { KJX_STATE_DIR: state }, timeoutMs: 1_200_000 });
  const on = (node: string, ...argv: string[]) => kjx('exec', node, '--', ...argv);
  /** Where the service's running tasks are: node names, one per task. */
  const running = (): string[] =>
    on(
      'm',
      'docker',
      'service',
      'ps',
      'web',
      '--filter',
      'desired-state=running',
      '--format',
      '{{.Node}} {{.CurrentState}}',
    )
      .stdout.split('\n')
      .filter((l) => / Running /.test(l))
      .map((l) => l.split(' ')[0]!);
  async function until<T>(what: string, f: () => T, ok: (v: T) => boolean, ms: number): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = f();
      if (ok(v)) return v;
      if (Date.now() > end) assert.fail(`${what}: last ${JSON.stringify(v)}`);
      await sleep(3000);
    }
  }

  before(() => {
    assert.equal(kjx('init', '--swarm').code, 0);
    assert.equal(readFileSync(join(ws, 'kjx-cluster.yaml'), 'utf8'), SWARM_CLUSTER_YAML);
    assert.equal(readFileSync(join(ws, SWARM_NODE_SPEC), 'utf8'), SWARM_NODE_SPEC_YAML);
    const up = kjx('up', '--accel', 'tcg', '--timeout', '1200');
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /docker: swarm of 3 nodes ready/);
    const s = JSON.parse(kjx('status', '--json').stdout) as {
      supervisorPid: number;
      switch: { pid: number };
      nodes: { pid: number }[];
    };
    pids.push(s.supervisorPid, s.switch.pid, ...s.nodes.map((n) => n.pid));
    // no registry: every node loads the image from its own image
    for (const n of ['m', 'w1', 'w2'])
      assert.equal(on(n, 'docker', 'load', '-q', '-i', '/usr/lib/kjx/check-data/image.tar').code, 0, n);
  });

  after(async () => {
    if (existsSync(join(state, 'clusters', 'swarm', 'cluster.json'))) kjx('down');
    for (let i = 0; i < 100 && pids.some(alive); i++) await sleep(100);
    for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
    removeAll(ws, state);
  });

  test('the three nodes are one swarm: a manager and two workers, all Ready', () => {
    const ls = on('m', 'docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}');
    assert.equal(ls.code, 0, ls.stderr);
    const lines = ls.stdout
      .trim()
      .split('\n')
      .map((l) => l.trimEnd())
      .sort();
    assert.deepEqual(lines, ['m Ready Leader', 'w1 Ready', 'w2 Ready']);
    // the join tokens went over exec only: not in the events log
    assert.doesNotMatch(readFileSync(join(state, 'clusters', 'swarm', 'events.jsonl'), 'utf8'), /SWMTKN/);
  });

  test('on every node dockerd started after the tracer was ready (guest uptimes)', () => {
    const boots = readFileSync(join(state, 'clusters', 'swarm', 'boots.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { node: string; services: { name: string; state: string; uptime: number }[] },
      );
    assert.equal(boots.length, 3);
    for (const b of boots) {
      const at = (name: string, st: string) =>
        b.services.find((e) => e.name === name && e.state === st)?.uptime;
      const tracer = at('tracer', 'ready');
      const docker = at('docker', 'up');
      assert.ok(tracer !== undefined && docker !== undefined, `${b.node}: ${JSON.stringify(b.services)}`);
      assert.ok(docker >= tracer, `${b.node}: docker up at ${docker} s, tracer ready at ${tracer} s`);
    }
  });

  test('a replicated service of 3 runs on all three nodes, reached by name over the overlay', async () => {
    const net = on('m', 'docker', 'network', 'create', '-d', 'overlay', '--attachable', 'appnet');
    assert.equal(net.code, 0, net.stderr);
    const svc = on(
      'm',
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
      IMAGE,
      'sh',
      '-c',
      'hostname > /tmp/index.html; exec busybox httpd -f -p 8080 -h /tmp',
    );
    assert.equal(svc.code, 0, svc.stderr);
    const nodes = await until('3 tasks running', running, (v) => v.length === 3, 600_000);
    assert.deepEqual(nodes.sort(), ['m', 'w1', 'w2']);
    // from a container on w2, the service by name (the swarm's DNS, then its virtual IP
    // over the overlay): three requests reach three tasks. busybox nc, not wget: the
    // static busybox's wget crashes in this image's containers
    const get = await until(
      'a container on w2 reaching web by name',
      () =>
        on(
          'w2',
          'docker',
          'run',
          '--rm',
          '--network',
          'appnet',
          IMAGE,
          'sh',
          '-c',
          'for i in 1 2 3; do printf "GET / HTTP/1.0\\r\\n\\r\\n" | busybox nc -w 10 web 8080 | busybox tail -1; done',
        ),
      (r) => r.code === 0 && r.stdout.trim().split('\n').length === 3,
      300_000,
    );
    const hosts = get.stdout.trim().split('\n');
    for (const h of hosts) assert.match(h, /^[0-9a-f]{12}$/);
    // the container IDs of the tasks, as the service reports them
    const tasks = on('m', 'docker', 'service', 'ps', 'web', '-q', '--filter', 'desired-state=running');
    assert.equal(tasks.stdout.trim().split('\n').length, 3);
    assert.ok(new Set(hosts).size >= 2, `one task answered every request: ${hosts.join(' ')}`);
  });

  test('after a worker is killed the replicas return to 3 on the survivors', async () => {
    assert.equal(kjx('kill', 'w1').code, 0);
    const t0 = Date.now();
    const nodes = await until(
      '3 tasks running without w1',
      running,
      (v) => v.length === 3 && !v.includes('w1'),
      600_000,
    );
    console.log(`swarm: replicas back to 3 ${((Date.now() - t0) / 1000).toFixed(1)} s after killing w1`);
    assert.deepEqual([...new Set(nodes)].sort(), ['m', 'w2']);
  });
});
