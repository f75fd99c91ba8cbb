import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BOOT_FORMATS, DISK_FORMATS, MEDIA_FORMATS, mediaFileName } from '../../src/image/media.js';
import { bootRootsOf } from '../../src/plan/resolve.js';
import { parseSpec } from '../../src/spec/load.js';
import {
  BOOTABLE_OUTPUTS,
  GRUB_PACKAGES,
  initramfsFileName,
  initramfsFiles,
  isInitramfsFileName,
  OUTPUT_CATALOGUE,
  OUTPUTS,
  outputFileName,
  outputPackages,
  outputsOf,
} from '../../src/spec/outputs.js';
import { ARTIFACT_KINDS } from '../../src/vm/prepare.js';

describe('the catalogue of outputs', () => {
  it('names the file each output writes', () => {
    assert.deepEqual(
      (['iso', 'raw', 'qcow2', 'vmdk', 'tar', 'oci'] as const).map((o) => outputFileName(o, 'kjx')),
      ['kjx.iso', 'kjx.img', 'kjx.qcow2', 'kjx.vmdk', 'kjx.tar', 'kjx-oci.tar'],
    );
    assert.deepEqual(initramfsFiles('gzip'), ['vmlinuz', 'initramfs.cpio.gz']);
    assert.deepEqual((['gzip', 'zstd', 'xz', 'none'] as const).map(initramfsFileName), [
      'initramfs.cpio.gz',
      'initramfs.cpio.zst',
      'initramfs.cpio.xz',
      'initramfs.cpio',
    ]);
    for (const n of ['initramfs.cpio', 'initramfs.cpio.zst']) assert.ok(isInitramfsFileName(n), n);
    for (const n of ['initramfs', 'initramfs.cpio.lz4', 'x/initramfs.cpio', 'vmlinuz'])
      assert.ok(!isInitramfsFileName(n), n);
  });

  it('says which writer makes each output and what --artifact boots', () => {
    assert.deepEqual(
      OUTPUTS.map((o) => OUTPUT_CATALOGUE[o].writer),
      ['initramfs', 'iso', 'disk', 'disk', 'disk', 'tar', 'oci'],
    );
    assert.deepEqual(BOOTABLE_OUTPUTS, ['initramfs', 'iso', 'raw', 'qcow2', 'vmdk']);
    assert.equal(ARTIFACT_KINDS, BOOTABLE_OUTPUTS, 'the commands that boot take the catalogue');
    assert.deepEqual(outputsOf('disk'), ['raw', 'qcow2', 'vmdk']);
    // the media writer's lists are the catalogue's
    assert.deepEqual(MEDIA_FORMATS, ['iso', 'raw', 'qcow2', 'vmdk', 'tar']);
    assert.deepEqual(DISK_FORMATS, ['raw', 'qcow2', 'vmdk']);
    assert.deepEqual(BOOT_FORMATS, ['iso', 'raw', 'qcow2', 'vmdk']);
    for (const f of MEDIA_FORMATS) assert.equal(mediaFileName('m', f), outputFileName(f, 'm'));
  });

  it('lists the packages the writers need, which the plan takes', () => {
    const grub = GRUB_PACKAGES.map((p) => p.name).sort();
    assert.deepEqual(outputPackages(['initramfs', 'tar', 'oci']), []);
    assert.deepEqual(outputPackages(['iso']), grub);
    assert.deepEqual(outputPackages(['initramfs', 'raw', 'qcow2']), grub, 'each package once');
    assert.deepEqual(bootRootsOf(parseSpec('outputs: [initramfs, tar]\n', 'kjx.yaml')), []);
    assert.deepEqual(bootRootsOf(parseSpec('outputs: [vmdk]\n', 'kjx.yaml')), grub);
  });
});
