/**
 * Guests launched from one prepared boot (src/vm/launch.ts) in real QEMU (TCG) with the
 * default image: two ephemeral VMs at once from this one process, each with its own
 * state directory, nonce and sockets, each running its command with files copied in
 * and out; a detached VM driven over SSH through the same interface; and a detached
 * boot that goes quiet ended by its `--silence` limit. Every QEMU is checked gone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { isKjxError } from '../../src/util/errors.js';
import type { Guest, RunIo } from '../../src/vm/guest.js';
import { launch } from '../../src/vm/launch.js';
import { type Prepared, prepareBoot } from '../../src/vm/prepare.js';
import { listVms } from '../../src/vm/registry.js';
import { alive, removeAll, runKjx, SHARED_CACHE, workspace } from '../helpers/kjx.js';

const made: string[] = [];
const saved = { cache: process.env.KJX_CACHE_DIR, state: process.env.KJX_STATE_DIR };
after(() => {
  removeAll(...made);
  for (const [k, v] of [
    ['KJX_CACHE_DIR', saved.cache],
    ['KJX_STATE_DIR', saved.state],
  ] as const)
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});

/** Streams that keep what the command printed. */
function capture(): RunIo & { out(): string; err(): string } {
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  return {
    stdout: new PassThrough().on('data', (b: Buffer) => o.push(b)),
    stderr: new PassThrough().on('data', (b: Buffer) => e.push(b)),
    timeoutS: 600,
    silenceS: 300,
    out: () => Buffer.concat(o).toString('utf8'),
    err: () => Buffer.concat(e).toString('utf8'),
  };
}

/** The QEMU pid an ephemeral guest recorded. */
const qemuPid = (g: Guest) => Number(readFileSync(join(g.stateDir, 'qemu.pid'), 'utf8'));

describe('launch (real QEMU)', () => {
  let ws: string;
  let host: string;
  let p: Prepared;

  before(async () => {
    ws = workspace('launch');
    host = mkdtempSync(join(tmpdir(), 'kjx-launch-host-'));
    const state = mkdtempSync(join(tmpdir(), 'kjx-launch-state-'));
    made.push(ws, host, state);
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    process.env.KJX_CACHE_DIR = SHARED_CACHE;
    process.env.KJX_STATE_DIR = state;
    p = await prepareBoot({
      specPath: join(ws, 'kjx.yaml'),
      outDir: join(ws, 'dist'),
      warn: () => {},
      accel: 'tcg',
    });
    mkdirSync(join(host, 'in', 'sub'), { recursive: true });
    writeFileSync(join(host, 'in', 'a.txt'), 'from the host\n');
    writeFileSync(join(host, 'in', 'sub', 'run.sh'), '#!/bin/sh\necho ran "$@"\n', { mode: 0o755 });
  });

  test('two ephemeral VMs at once from one process: separate state, files in and out, each its own status', async () => {
    const [a, b] = await Promise.all([launch(p), launch(p)]);
    assert.notEqual(a.stateDir, b.stateDir);
    await a.copyIn(join(host, 'in'), '/mnt/in');
    const copied = Promise.allSettled([
      a.copyOut('/etc/os-release', join(host, 'os-release')),
      a.copyOut('/mnt/in/made.txt', join(host, 'made.txt')),
      a.copyOut('/no/such/file', join(host, 'missing.txt')),
    ]);
    const [ia, ib] = [capture(), capture()];
    const [ra, rb] = await Promise.all([
      a.run(
        {
          argv: ['sh', '-c', 'cat a.txt; sub/run.sh x; echo "$WHO" >made.txt; echo to-err >&2; exit 3'],
          env: { WHO: 'guest a' },
          cwd: '/mnt/in',
        },
        ia,
      ),
      b.run({ argv: ['sh', '-c', 'ls /mnt; exit 4'] }, ib),
    ]);
    assert.deepEqual(ra, { outcome: 'exited', status: 3, start: { how: 'booted' } }, ia.err());
    assert.deepEqual(rb, { outcome: 'exited', status: 4, start: { how: 'booted' } }, ib.err());
    assert.equal(ia.out(), 'from the host\nran x\n');
    assert.equal(ia.err(), 'to-err\n');
    assert.doesNotMatch(ib.out(), /\bin\b/, "b got a's files");

    // a's copies: two files written whole, the missing one an error and no file
    const [osRelease, made, missing] = await copied;
    assert.equal(osRelease.status, 'fulfilled');
    assert.match(readFileSync(join(host, 'os-release'), 'utf8'), /^ID=kjx$/m);
    assert.equal(made.status, 'fulfilled');
    assert.equal(readFileSync(join(host, 'made.txt'), 'utf8'), 'guest a\n');
    assert.equal(missing.status, 'rejected');
    assert.ok(
      missing.status === 'rejected' && isKjxError(missing.reason) && missing.reason.code === 'GUEST_COPY',
    );
    assert.throws(() => readFileSync(join(host, 'missing.txt')));

    // they ran at the same time, each with its own nonce, sockets and console
    const [ma, mb] = [a.markers(), b.markers()];
    const at = (m: typeof ma, e: string) => m.find((x) => x.event === e)!.at;
    assert.ok(
      at(ma, 'init') < at(mb, 'exit') && at(mb, 'init') < at(ma, 'exit'),
      'the two VMs did not overlap',
    );
    const argv = (g: Guest) => JSON.parse(readFileSync(join(g.stateDir, 'argv.json'), 'utf8')) as string[];
    const nonce = (g: Guest) => argv(g).find((x) => x.startsWith('name=opt/kjx/nonce'))!;
    assert.notEqual(nonce(a), nonce(b));
    for (const g of [a, b]) {
      assert.ok(argv(g).some((x) => x.includes(join(g.stateDir, 'stdout.sock'))));
      assert.match(readFileSync(join(g.stateDir, 'console.log'), 'utf8'), /@@kjx:[0-9a-f]{32}:exit status=/);
      assert.ok(g.timing().phases.ready! > 0);
      assert.equal(alive(qemuPid(g)), false, `QEMU of ${g.name} still running`);
      assert.equal((await g.stop()).how, 'gone');
    }
    // one command each: the VM is gone with it
    await assert.rejects(a.run({ argv: ['true'] }, capture()), /runs one command/);
    await assert.rejects(a.copyIn(host, '/x'), /takes its files with its one command/);
  });

  test('a detached VM through the same interface: commands with env and cwd, copies both ways, stop', async () => {
    const g = await launch(p, { detached: { name: 'launch-test', timeoutS: 600 } });
    const pid = g.record.pid;
    try {
      assert.ok(alive(pid));
      assert.ok(g.record.hostKeys.length > 0);
      assert.ok(g.timing().phases.ready! > 0);
      await g.copyIn(join(host, 'in'), '/mnt/in');
      const io = capture();
      const r = await g.run(
        {
          argv: ['sh', '-c', 'cat a.txt; sub/run.sh y; echo "$WHO" >made.txt; exit 5'],
          env: { WHO: 'detached' },
          cwd: '/mnt/in',
        },
        io,
      );
      assert.deepEqual(r, { outcome: 'exited', status: 5 }, io.err());
      assert.equal(io.out(), 'from the host\nran y\n');
      await g.copyOut('/mnt/in/made.txt', join(host, 'made-detached.txt'));
      assert.equal(readFileSync(join(host, 'made-detached.txt'), 'utf8'), 'detached\n');
      await assert.rejects(
        g.copyOut('/mnt/in', join(host, 'dir.txt')),
        (e: unknown) => isKjxError(e) && e.code === 'GUEST_COPY',
      );
      // --timeout over SSH ends the command, not the VM
      const slow = await g.run({ argv: ['sleep', '600'] }, { ...capture(), timeoutS: 2 });
      assert.equal(slow.outcome, 'timeout');
      assert.ok(alive(pid));
    } finally {
      const s = await g.stop();
      assert.equal(s.how, 'powerdown');
    }
    assert.equal(alive(pid), false);
    assert.deepEqual(listVms(), []);
  });

  test('regression: a detached boot that goes quiet ends at --silence (boot --detach had only --timeout)', async () => {
    const hang = workspace(
      'launch-hang',
      'files:\n  - path: /init\n    content: "#!/bin/sh\\necho hanging\\nwhile :; do sleep 1; done\\n"\n    mode: "0755"\n    override: true\n',
    );
    made.push(hang);
    const b = runKjx(['build'], { cwd: hang });
    assert.equal(b.code, 0, b.stderr);
    const quiet = await prepareBoot({
      specPath: join(hang, 'kjx.yaml'),
      outDir: join(hang, 'dist'),
      warn: () => {},
      accel: 'tcg',
    });
    await assert.rejects(
      launch(quiet, { detached: { name: 'launch-quiet', timeoutS: 600, silenceS: 5 } }),
      (e: unknown) =>
        isKjxError(e) &&
        e.code === 'VM_TIMEOUT' &&
        /no output from the guest for 5s \(--silence\)/.test(e.message),
    );
    assert.deepEqual(listVms(), [], 'the VM is still registered');
    // its QEMU (which names the image's initramfs in its argv) was killed
    const running = () =>
      (spawnSync('pgrep', ['-f', `qemu-system.*${hang}/dist/`], { encoding: 'utf8' }).stdout ?? '')
        .split('\n')
        .filter(Boolean)
        .map(Number)
        .filter(alive);
    for (let i = 0; i < 100 && running().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(running(), []);
  });
});
