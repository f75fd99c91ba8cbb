/**
 * Every boot medium boots the image to the guest's ready marker in real QEMU
 * (TCG): the ISO from CD with SeaBIOS, from disk with SeaBIOS (isohybrid), from
 * CD and from disk with OVMF (UEFI); the raw disk with SeaBIOS and OVMF; qcow2
 * and vmdk. Disks switch into their ext4 root. One QEMU at a time, always
 * stopped in `finally`, and checked gone by pid.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findOvmf } from '../../src/vm/firmware.js';
import type { VmConfig, VmMedia } from '../../src/vm/qemu-args.js';
import { startVm } from '../../src/vm/session.js';
import { consoleWithoutNonce, removeAll } from '../helpers/kjx.js';
import { buildAs, mediaProject } from '../helpers/media.js';

const BOOT_MS = 240_000;

describe('booting the media (TCG)', () => {
  let ws: string;
  let buildId: string;
  const cleanup: string[] = [];
  const dist = (name: string) => join(ws, 'dist', name);

  before(() => {
    ws = mediaProject('media-boot', ['iso', 'raw', 'qcow2', 'vmdk']);
    cleanup.push(dirname(ws));
    const r = buildAs(ws, { nobody: true });
    cleanup.push(r.cache);
    assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
    buildId = JSON.parse(readFileSync(dist('manifest.json'), 'utf8')).buildId;
  });
  after(() => removeAll(...cleanup));

  /** Boot, wait for `ready`, return the console; QEMU is always stopped. */
  async function boot(
    t: { diagnostic(msg: string): void },
    media: VmMedia,
    firmware: 'bios' | 'uefi',
  ): Promise<string> {
    const config: VmConfig = {
      accel: 'tcg',
      memoryMiB: 512,
      cpus: 1,
      kernel: '',
      cmdline: '',
      console: { kind: 'stdio' },
      media,
      ...(firmware === 'uefi' ? { firmware: { kind: 'uefi' as const, path: findOvmf() } } : {}),
    };
    const vm = startVm(config);
    try {
      const ready = await vm.waitForMarker('ready', BOOT_MS);
      assert.equal(ready.fields.build, buildId);
      t.diagnostic(
        `${media.format} ${media.kind} ${firmware}: ready ${((ready.at - vm.startedAt) / 1000).toFixed(1)} s after QEMU started`,
      );
      return consoleWithoutNonce(vm);
    } finally {
      await vm.stop();
      assert.throws(() => process.kill(vm.pid, 0), 'QEMU is still running');
    }
  }

  /** A writable copy of a disk artifact, so dist/ stays as built. */
  const copy = (name: string): string => {
    const to = join(dirname(ws), `boot-${name}`);
    copyFileSync(dist(name), to);
    return to;
  };

  test('the ISO as a CD with SeaBIOS', async (t) => {
    const out = await boot(t, { kind: 'cdrom', path: dist('kjx.iso'), format: 'raw' }, 'bios');
    assert.match(out, /kjx: booting kjx 0\.1\.0/, 'GRUB ran our grub.cfg');
    assert.doesNotMatch(out, /@@kjx:root/, 'a CD boots the initramfs itself, no root switch');
  });

  test('the ISO as a disk with SeaBIOS (isohybrid)', async (t) => {
    await boot(t, { kind: 'disk', path: dist('kjx.iso'), format: 'raw', readonly: true }, 'bios');
  });

  test('the ISO as a CD with OVMF (UEFI)', async (t) => {
    await boot(t, { kind: 'cdrom', path: dist('kjx.iso'), format: 'raw' }, 'uefi');
  });

  test('the ISO as a disk with OVMF (UEFI, the appended EFI partition)', async (t) => {
    await boot(t, { kind: 'disk', path: dist('kjx.iso'), format: 'raw', readonly: true }, 'uefi');
  });

  for (const [name, format, firmware] of [
    ['kjx.img', 'raw', 'bios'],
    ['kjx.img', 'raw', 'uefi'],
    ['kjx.qcow2', 'qcow2', 'bios'],
    ['kjx.vmdk', 'vmdk', 'bios'],
  ] as const) {
    test(`${format} disk with ${firmware === 'bios' ? 'SeaBIOS' : 'OVMF (UEFI)'}: root switched to the ext4 partition`, async (t) => {
      const out = await boot(t, { kind: 'disk', path: copy(name), format }, firmware);
      assert.match(out, /@@kjx:root status=ok dev=\/dev\/vda3/);
      assert.ok(
        out.indexOf('@@kjx:root status=ok') < out.indexOf('@@kjx:init'),
        'the switch comes before init',
      );
    });
  }
});
