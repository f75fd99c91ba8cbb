/**
 * Forwarded ports without a race (src/vm/forwards.ts): QEMU binds port 0 itself
 * and `info usernet` says which port it got. Parsed from QEMU 7.2's own output,
 * and read from a real QEMU (stopped before the guest runs, `-S`) bound to a
 * port that then accepts connections; its paths sit in a directory whose name
 * has a comma (QEMU's option lists need it doubled).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connectQmpOnceUp, forwardedPort, parseUsernet } from '../../src/vm/forwards.js';
import { qemuArgv } from '../../src/vm/qemu-args.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('parseUsernet reads the host forwards of `info usernet`', () => {
  const text = [
    'Hub -1 (net0):',
    '  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ',
    '  TCP[HOST_FORWARD]   8       127.0.0.1 45151       10.0.2.15    22     0     0',
    '  TCP[HOST_FORWARD]   9       127.0.0.1 40001       10.0.2.15  2200     0     0',
    '  TCP[ESTABLISHED]   12       10.0.2.15 41000        10.0.2.2   443     0     0',
    '  UDP[236 sec]       13       10.0.2.15    68        10.0.2.2    67     0     0',
  ].join('\r\n');
  assert.deepEqual(parseUsernet(text), [
    { host: 45151, guest: 22 },
    { host: 40001, guest: 2200 },
  ]);
  assert.deepEqual(parseUsernet(''), []);
});

test('a real QEMU binds the forward to a free port of its own choosing on 127.0.0.1; QMP names it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-fwd,comma-'));
  dirs.push(dir);
  const qmpSocket = join(dir, 'qmp.sock');
  // a blank disk to "boot": with -S nothing runs, QEMU only opens what it is given
  const disk = join(dir, 'blank.img');
  writeFileSync(disk, Buffer.alloc(1 << 20));
  const argv = qemuArgv({
    accel: 'tcg',
    memoryMiB: 64,
    cpus: 1,
    kernel: '',
    cmdline: '',
    media: { kind: 'disk', path: disk, format: 'raw', readonly: true },
    console: { kind: 'file', path: join(dir, 'console.log') },
    qmpSocket,
    net: { forwards: [{ host: 0, guest: 2200 }], restrict: true },
  });
  const child = spawn(argv[0]!, [...argv.slice(1), '-S'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b) => {
    stderr += b;
  });
  const gone = new Promise((r) => child.once('exit', r));
  try {
    const qmp = await connectQmpOnceUp(qmpSocket, () => child.exitCode === null, 60_000).catch((e) => {
      throw new Error(`${(e as Error).message}\n${stderr}`);
    });
    let port: number;
    try {
      port = await forwardedPort(qmp, 2200);
      await assert.rejects(forwardedPort(qmp, 22), /no host port forwarded to guest port 22/);
    } finally {
      qmp.close();
    }
    assert.ok(port > 0 && port < 65536, String(port));
    // QEMU listens there: a connection is accepted (slirp holds it while the guest is stopped)
    await new Promise<void>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve();
      });
      s.once('error', reject);
    });
  } finally {
    child.kill('SIGKILL');
    await gone;
  }
});
