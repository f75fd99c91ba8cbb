/**
 * A disk image's root persists: the guest writes a file, the VM reboots (QEMU
 * runs with -no-reboot, so a reboot ends it and we start it again on the same
 * disk), and the next boot reads the file back. Then `kjx inspect` reads the
 * guest's file out of the image on the host.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chownSync, copyFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { VmConfig } from '../../src/vm/qemu-args.js';
import { type Session, startVm } from '../../src/vm/session.js';
import { removeAll } from '../helpers/kjx.js';
import { buildAs, kjxAsNobody, mediaProject } from '../helpers/media.js';

describe('a disk image keeps what the guest writes', () => {
  let ws: string;
  let disk: string;
  const cleanup: string[] = [];

  before(() => {
    ws = mediaProject('media-persist', ['qcow2']);
    cleanup.push(dirname(ws));
    const r = buildAs(ws, { nobody: true });
    cleanup.push(r.cache);
    assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
    disk = join(dirname(ws), 'persist.qcow2');
    copyFileSync(join(ws, 'dist', 'kjx.qcow2'), disk);
    // a disk is its owner's alone (0600: its first boot stores the SSH host keys);
    // the ordinary user who reads it below owns this copy, as it owns the build
    if (process.getuid?.() === 0) chownSync(disk, 65534, 65534);
  });
  after(() => removeAll(...cleanup));

  const config = (): VmConfig => ({
    accel: 'tcg',
    memoryMiB: 512,
    cpus: 1,
    kernel: '',
    cmdline: '',
    console: { kind: 'stdio' },
    media: { kind: 'disk', path: disk, format: 'qcow2' },
  });

  /** `p`, or 'timeout' after `ms` (the timer does not outlive the race). */
  async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), ms);
    });
    try {
      return await Promise.race([p, t]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Type a command on the console and wait for the line it prints last. */
  async function sh(vm: Session, command: string, done: string): Promise<void> {
    vm.write(`${command}; echo ${done}-$((40 + 2))\n`);
    await vm.waitForLine(new RegExp(`^${done}-42\\r?$`), 60_000);
  }

  test('write, reboot, read back', async (t) => {
    const t0 = performance.now();
    const mark = (what: string) =>
      t.diagnostic(`${what} at ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const token = `kjx-persist-${randomBytes(6).toString('hex')}`;
    const first = startVm(config());
    try {
      await first.waitForMarker('ready', 240_000);
      mark('first boot ready');
      await sh(first, `echo ${token} > /root/persist.txt && sync`, 'WRITTEN');
      first.write('reboot\n');
      // runit runs stage 3 and reboots; -no-reboot turns that into QEMU exiting
      const code = await within(first.exited, 90_000);
      assert.notEqual(code, 'timeout', `the guest did not reboot:\n${first.console().slice(-2000)}`);
      mark('rebooted');
    } finally {
      await first.stop();
    }

    const second = startVm(config());
    try {
      await second.waitForMarker('ready', 240_000);
      mark('second boot ready');
      await sh(second, 'cat /root/persist.txt', 'READ');
      assert.match(second.console(), new RegExp(`^${token}\\r?$`, 'm'), 'the file written before the reboot');
      second.write('poweroff\n');
      await within(second.exited, 90_000);
      mark('powered off');
    } finally {
      await second.stop();
    }

    assert.equal(statSync(disk).mode & 0o777, 0o600, 'a booted disk holds host keys: 0600');
    // and the host reads it out of the image, without mounting it
    const r = kjxAsNobody(['inspect', disk, '/root/persist.txt'], ws);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${token}\n`);
  });
});
