/** Boot loader packages in kjx.lock: resolved (without Depends) only when an output boots. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { mediaKernelModules } from '../../src/pipeline/media-stage.js';
import { loadLock, lockMatches } from '../../src/plan/lock.js';
import { bootRootsOf, resolvePlanPackages } from '../../src/plan/resolve.js';
import type { AptIndex, AptPackage } from '../../src/sources/apt.js';
import { parseSpec } from '../../src/spec/load.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function pkg(name: string, depends: string[][] = []): AptPackage {
  return {
    name,
    version: '1.0',
    arch: 'amd64',
    filename: `pool/${name}.deb`,
    size: 10,
    sha256: 'a'.repeat(64),
    depends,
    provides: [],
  };
}

/** A fake apt index that knows every name it is asked for and logs the queries. */
function fakeIndex(log: string[]): AptIndex {
  return {
    async show(names) {
      log.push(...names);
      const out = new Map<string, AptPackage>();
      for (const n of names) {
        const name = n.split('=')[0]!;
        out.set(name, pkg(name, name.startsWith('grub-') ? [['grub-common']] : []));
      }
      return out;
    },
    async providers() {
      return [];
    },
  };
}

test('only outputs that boot need GRUB', () => {
  const spec = (outputs: string) => parseSpec(`outputs: [${outputs}]`, '/p/kjx.yaml');
  assert.deepEqual(bootRootsOf(spec('initramfs')), []);
  assert.deepEqual(bootRootsOf(spec('tar')), []);
  assert.deepEqual(bootRootsOf(spec('iso')), ['grub-efi-amd64-bin', 'grub-pc-bin']);
  assert.deepEqual(bootRootsOf(spec('initramfs, qcow2')), ['grub-efi-amd64-bin', 'grub-pc-bin']);
});

test('the lock records the boot packages without their Depends, and answers for them next time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-lock-'));
  dirs.push(dir);
  const lockPath = join(dir, 'kjx.lock');
  const spec = parseSpec('outputs: [iso]\nkernel: {image: ./bzImage}', join(dir, 'kjx.yaml'));
  const log: string[] = [];
  const set = await resolvePlanPackages({ spec, lockPath, updateLock: false, index: fakeIndex(log) });
  assert.deepEqual(set.boot.map((p) => p.name).sort(), ['grub-efi-amd64-bin', 'grub-pc-bin']);
  assert.ok(!set.packages.some((p) => p.name.startsWith('grub')), 'GRUB is not a guest package');
  assert.ok(!log.includes('grub-common'), 'the boot loaders are resolved without their Depends');
  const lock = (await loadLock(lockPath))!;
  assert.deepEqual(lock.bootRoots, ['grub-efi-amd64-bin', 'grub-pc-bin']);
  assert.deepEqual(Object.keys(lock.boot ?? {}).sort(), ['grub-efi-amd64-bin', 'grub-pc-bin']);
  // the same spec again: answered from the lock, apt is not asked
  const again: string[] = [];
  const set2 = await resolvePlanPackages({ spec, lockPath, updateLock: false, index: fakeIndex(again) });
  assert.equal(set2.lockChanged, false);
  assert.deepEqual(again, []);
  assert.deepEqual(set2.boot.map((p) => p.name).sort(), ['grub-efi-amd64-bin', 'grub-pc-bin']);
});

test('a lock without boot packages does not answer for a spec that now needs them', () => {
  const lock = {
    lockVersion: 1 as const,
    roots: ['busybox'],
    kernelRoot: null,
    packages: {},
    kernel: null,
  };
  assert.equal(lockMatches(lock, ['busybox'], null), true);
  assert.equal(lockMatches(lock, ['busybox'], null, ['grub-pc-bin']), false);
});

test('a spec without media writes a lock without the boot keys', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-lock-'));
  dirs.push(dir);
  const lockPath = join(dir, 'kjx.lock');
  const spec = parseSpec('kernel: {image: ./bzImage}', join(dir, 'kjx.yaml'));
  await resolvePlanPackages({ spec, lockPath, updateLock: false, index: fakeIndex([]) });
  const text = readFileSync(lockPath, 'utf8');
  assert.doesNotMatch(text, /bootRoots|"boot"/);
});

test('disk outputs add the root switch drivers, bootable media qemu_fw_cfg, to a Debian kernel, not to a kernel from the host', () => {
  const pkg = parseSpec('outputs: [raw]', '/p/kjx.yaml');
  for (const m of ['virtio_pci', 'virtio_blk', 'virtio_scsi', 'sd_mod', 'ext4'])
    assert.ok(mediaKernelModules(pkg).includes(m), m);
  assert.equal(new Set(mediaKernelModules(pkg)).size, mediaKernelModules(pkg).length, 'no module twice');
  assert.ok(mediaKernelModules(pkg).includes('qemu_fw_cfg'), 'kjx run --artifact needs fw_cfg');
  const iso = parseSpec('outputs: [iso]', '/p/kjx.yaml');
  assert.deepEqual(mediaKernelModules(iso), [...iso.kernel.modules, 'qemu_fw_cfg']);
  const initramfs = parseSpec('outputs: [initramfs, tar]', '/p/kjx.yaml');
  assert.deepEqual(mediaKernelModules(initramfs), initramfs.kernel.modules);
  const local = parseSpec('outputs: [raw]\nkernel: {image: ./bzImage, modules: []}', '/p/kjx.yaml');
  assert.deepEqual(mediaKernelModules(local), []);
});
