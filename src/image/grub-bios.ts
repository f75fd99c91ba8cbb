/**
 * What `grub-bios-setup` does for a GPT disk whose core image lives in a BIOS
 * boot partition, as pure byte patches, so building a disk needs neither root
 * nor a loop device.
 *
 * GRUB 2 (grub-core/boot/i386/pc/boot.S, diskboot.S; util/setup.c):
 * - boot.img is the MBR code. At 0x5C (GRUB_BOOT_MACHINE_KERNEL_SECTOR) it holds
 *   the 64-bit LBA of the first sector of core.img. At 0x66 a 2-byte jump skips
 *   the "is the BIOS boot drive a hard disk" check; setup replaces it with two
 *   NOPs for hard disks, working around BIOSes that pass a wrong drive number.
 *   Only its first 440 bytes are used: the rest of the sector is the disk
 *   signature and the partition table.
 * - core.img starts with diskboot.img, whose last 12 bytes are a block list
 *   entry (start LBA u64, sector count u16, load segment u16) saying where the
 *   rest of core.img is. grub-mkimage fills count and segment for a core image
 *   right after the MBR; we point `start` at the sector after core.img's first.
 */
import { KjxError } from '../util/errors.js';

const KERNEL_SECTOR = 0x5c;
const DRIVE_CHECK = 0x66;
const BLOCKLIST = 512 - 12;

/** The MBR boot code (440 bytes) that loads a core image starting at `coreLba`. */
export function biosBootCode(bootImg: Buffer, coreLba: number): Buffer {
  if (bootImg.length !== 512 || bootImg[510] !== 0x55 || bootImg[511] !== 0xaa)
    throw new KjxError('INTERNAL', 'boot.img is not a 512-byte boot sector');
  const code = Buffer.from(bootImg.subarray(0, 440));
  code.writeBigUInt64LE(BigInt(coreLba), KERNEL_SECTOR);
  code[DRIVE_CHECK] = 0x90;
  code[DRIVE_CHECK + 1] = 0x90;
  return code;
}

/** core.img with its block list pointing at the sectors after `coreLba`. */
export function patchCoreImage(core: Buffer, coreLba: number): Buffer {
  const sectors = Math.ceil(core.length / 512);
  const out = Buffer.alloc(sectors * 512);
  core.copy(out);
  const len = out.readUInt16LE(BLOCKLIST + 8);
  const segment = out.readUInt16LE(BLOCKLIST + 10);
  if (len !== sectors - 1 || segment !== 0x820) {
    throw new KjxError(
      'INTERNAL',
      `core.img block list says ${len} sectors at segment 0x${segment.toString(16)}, expected ${sectors - 1} at 0x820`,
    );
  }
  out.writeBigUInt64LE(BigInt(coreLba + 1), BLOCKLIST);
  return out;
}
