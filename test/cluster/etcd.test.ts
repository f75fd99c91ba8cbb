/**
 * A 3-member etcd cluster as `kjx cluster init` writes it, up in real QEMU (TCG) on
 * a real vde_switch, with TLS from the cluster's CA, driven through the CLI: a key
 * written on one member is read on another; with one member killed writes succeed;
 * with two killed a write fails with a timeout (no quorum) and succeeds once they
 * are back; a restarted member catches up; an isolated minority cannot write while
 * the majority can. On every node etcd starts after the tracer is ready; `kjx cluster
 * timeline` draws every boot and fault. One cluster for the whole file, ended in
 * `after` (checked by pid).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { alive, type KjxResult, removeAll, runKjx } from '../helpers/kjx.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('etcd on a kjx cluster (real QEMU, vde_switch)', () => {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-etcd-'));
  const state = mkdtempSync(join(tmpdir(), 'kjx-etcd-state-'));
  const pids: number[] = [];
  const kjx = (...args: string[]): KjxResult =>
    runKjx(['cluster', ...args], { cwd: ws, env: { KJX_STATE_DIR: state }, timeoutMs: 900_000 });
  const etcdctl = (node: string, ...args: string[]) => kjx('exec', node, '--', 'etcdctl', ...args);
  /** Retry a command until it exits 0 (a member that just came back may not have rejoined yet). */
  async function eventually(what: string, f: () => KjxResult, ms = 120_000): Promise<KjxResult> {
    const end = Date.now() + ms;
    for (;;) {
      const r = f();
      if (r.code === 0) return r;
      if (Date.now() > end) assert.fail(`${what}: ${r.stdout}${r.stderr}`);
      await sleep(2000);
    }
  }

  before(() => {
    assert.equal(kjx('init').code, 0);
    const up = kjx('up', '--accel', 'tcg');
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /etcd: 3 members healthy/);
    const s = JSON.parse(kjx('status', '--json').stdout) as {
      supervisorPid: number;
      switch: { pid: number };
      nodes: { pid: number }[];
    };
    pids.push(s.supervisorPid, s.switch.pid, ...s.nodes.map((n) => n.pid));
  });

  after(async () => {
    if (existsSync(join(state, 'clusters', 'lab', 'cluster.json'))) kjx('down');
    for (let i = 0; i < 100 && pids.some(alive); i++) await sleep(100);
    for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
    removeAll(ws, state);
  });

  test('the CA key and node keys stay 0600 on the host and out of the image', () => {
    const ca = join(state, 'clusters', 'lab', 'ca');
    for (const f of ['ca.key', 'n1-10.77.0.11.key', 'n3-10.77.0.13.key'])
      assert.equal(statSync(join(ca, f)).mode & 0o777, 0o600, f);
    const manifest = readFileSync(join(ws, 'dist', 'manifest.json'), 'utf8');
    assert.doesNotMatch(manifest, /etc\/kjx\/etcd/);
    const mode = kjx('exec', 'n2', '--', 'stat', '-c', '%a %U', '/etc/kjx/etcd/node.key');
    assert.equal(mode.stdout, '600 root\n');
  });

  test('on every node etcd started only after the tracer was ready (guest uptimes of its boot)', () => {
    const boots = readFileSync(join(state, 'clusters', 'lab', 'boots.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { node: string; services: { name: string; state: string; uptime: number }[] },
      );
    assert.deepEqual(boots.map((b) => b.node).sort(), ['n1', 'n2', 'n3']);
    for (const node of ['n1', 'n2', 'n3']) {
      const ev = boots.find((b) => b.node === node)!.services;
      const at = (name: string, st: string) => ev.find((e) => e.name === name && e.state === st)?.uptime;
      const tracerReady = at('tracer', 'ready');
      const etcdUp = at('etcd', 'up');
      assert.ok(tracerReady !== undefined && etcdUp !== undefined, `${node}: ${JSON.stringify(ev)}`);
      assert.ok(etcdUp >= tracerReady, `${node}: etcd up at ${etcdUp} s, tracer ready at ${tracerReady} s`);
      // the order the guest printed them in: no etcd start before the tracer's ready
      const firstEtcd = ev.findIndex((e) => e.name === 'etcd');
      assert.ok(firstEtcd > ev.findIndex((e) => e.name === 'tracer' && e.state === 'ready'), node);
    }
    // the tracer is attached and running: execsnoop holds its BPF links
    const ps = kjx('exec', 'n2', '--', 'sv', 'status', '/etc/service/tracer', '/etc/service/etcd');
    assert.match(ps.stdout, /^run: \/etc\/service\/tracer: .*\nrun: \/etc\/service\/etcd: /);
  });

  test('a key written on one member is read on another, without flags', () => {
    assert.equal(etcdctl('n1', 'put', 'k', 'v1').code, 0);
    assert.equal(etcdctl('n2', 'get', 'k', '--print-value-only').stdout, 'v1\n');
    assert.equal(etcdctl('n3', 'get', 'k', '--print-value-only').stdout, 'v1\n');
  });

  test('one member killed: writes still succeed (once a new leader is elected, if it led)', async () => {
    assert.equal(kjx('kill', 'n3').code, 0);
    assert.match(kjx('status').stdout, /n3\s+\d+\s+10\.77\.0\.13\s+killed/);
    // a killed leader costs an election (5 s election timeout, slower under TCG)
    await eventually('a write with n3 down', () => etcdctl('n1', 'put', 'k', 'v2'), 60_000);
    assert.equal(etcdctl('n2', 'get', 'k', '--print-value-only').stdout, 'v2\n');
  });

  test('two killed: a write fails with a timeout, and succeeds once they are back', async () => {
    assert.equal(kjx('kill', 'n2').code, 0);
    const w = etcdctl('n1', 'put', 'k', 'no-quorum');
    assert.notEqual(w.code, 0);
    assert.match(w.stderr, /context deadline exceeded/);
    const start = kjx('start', 'n2');
    assert.equal(start.code, 0, start.stderr);
    await eventually('a write with n2 back', () => etcdctl('n1', 'put', 'k', 'v3'));
    assert.equal(etcdctl('n2', 'get', 'k', '--print-value-only').stdout, 'v3\n');
  });

  test('a restarted member catches up (its own copy, a serializable read)', async () => {
    const start = kjx('start', 'n3');
    assert.equal(start.code, 0, start.stderr);
    await eventually('n3 to have v3 locally', () => {
      const r = etcdctl('n3', 'get', 'k', '--print-value-only', '--consistency=s');
      return r.stdout === 'v3\n' ? r : { ...r, code: 1 };
    });
  });

  test('an isolated minority cannot write while the majority can; after heal it has the majority’s writes', async () => {
    assert.equal(kjx('partition', 'n3').code, 0);
    assert.match(kjx('status').stdout, /partition: n3 \| the rest/);
    const minority = etcdctl('n3', 'put', 'k', 'minority');
    assert.notEqual(minority.code, 0);
    assert.match(minority.stderr, /context deadline exceeded|request timed out|no leader/);
    assert.equal(etcdctl('n1', 'put', 'k', 'majority').code, 0);
    assert.equal(kjx('heal').code, 0);
    await eventually('n3 to have the majority’s write', () => {
      const r = etcdctl('n3', 'get', 'k', '--print-value-only', '--consistency=s');
      return r.stdout === 'majority\n' ? r : { ...r, code: 1 };
    });
    const events = readFileSync(join(state, 'clusters', 'lab', 'events.jsonl'), 'utf8');
    for (const e of ['kill', 'start', 'partition', 'heal', 'healthy'])
      assert.match(events, new RegExp(`"event":"${e}"`));
  });

  test('kjx cluster timeline: every boot (3 at up, 2 after start) and every fault on one axis', () => {
    const out = join(ws, 'cluster-timeline.svg');
    const r = kjx('timeline', '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const t = JSON.parse(r.stdout) as {
      timeline: { rows: { node: string; name: string; start: number; ready?: number }[] };
      marks: { at: number; label: string }[];
    };
    const kernels = t.timeline.rows.filter((x) => x.name === 'kernel').map((x) => x.node);
    assert.deepEqual(kernels.sort(), ['n1', 'n2', 'n2', 'n3', 'n3']);
    const labels = t.marks.map((m) => m.label);
    for (const want of ['etcd healthy', 'kill n3', 'kill n2', 'start n2', 'start n3', 'partition n3', 'heal'])
      assert.ok(labels.includes(want), `${want} in ${labels.join(', ')}`);
    // marks in time order, and a restarted node's rows after its start
    assert.deepEqual(
      t.marks.map((m) => m.at),
      [...t.marks.map((m) => m.at)].sort((a, b) => a - b),
    );
    const killN3 = t.marks.find((m) => m.label === 'kill n3')!.at;
    const n3tracers = t.timeline.rows.filter((x) => x.node === 'n3' && x.name === 'tracer');
    assert.equal(n3tracers.length, 2);
    assert.ok(n3tracers[1]!.start > killN3);
    const svg = readFileSync(out, 'utf8');
    assert.match(svg, /^<\?xml|^<svg/);
    for (const w of ['n1: kernel', 'n3: tracer ready', 'n2: etcd ready', 'kill n3', 'heal'])
      assert.ok(svg.includes(w), w);
  });
});
