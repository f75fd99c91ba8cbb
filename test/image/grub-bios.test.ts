import assert from 'node:assert/strict';
import { test } from 'node:test';
import { biosBootCode, patchCoreImage } from '../../src/image/grub-bios.js';
import { KjxError } from '../../src/util/errors.js';

function bootImg(): Buffer {
  const b = Buffer.alloc(512, 0x11);
  b.writeBigUInt64LE(1n, 0x5c); // grub-mkimage's default: core right after the MBR
  b[0x66] = 0xeb;
  b[0x67] = 0x05;
  b.writeUInt16LE(0xaa55, 510);
  return b;
}

/** A core.img of 3 sectors whose block list says "2 more sectors from LBA 2 at 0x820". */
function coreImg(): Buffer {
  const c = Buffer.alloc(3 * 512 - 100, 0x22);
  c.writeBigUInt64LE(2n, 500);
  c.writeUInt16LE(2, 508);
  c.writeUInt16LE(0x820, 510);
  return c;
}

test('the MBR code points at the core image and skips the floppy drive check', () => {
  const code = biosBootCode(bootImg(), 2048);
  assert.equal(code.length, 440, 'leaves the disk signature and partition table alone');
  assert.equal(code.readBigUInt64LE(0x5c), 2048n);
  assert.deepEqual([code[0x66], code[0x67]], [0x90, 0x90]);
  assert.equal(code[0], 0x11);
});

test('the core image block list starts at the sector after its first', () => {
  const core = patchCoreImage(coreImg(), 2048);
  assert.equal(core.length, 3 * 512, 'padded to whole sectors');
  assert.equal(core.readBigUInt64LE(500), 2049n);
  assert.equal(core.readUInt16LE(508), 2);
  assert.equal(core.readUInt16LE(510), 0x820);
});

test('images that are not what grub-mkimage makes are refused', () => {
  const notBoot = Buffer.alloc(512);
  assert.throws(() => biosBootCode(notBoot, 2048), KjxError);
  const c = coreImg();
  c.writeUInt16LE(7, 508);
  assert.throws(() => patchCoreImage(c, 2048), /block list/);
});
