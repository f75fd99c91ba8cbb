/**
 * The hybrid ISO: ISO 9660 + Rock Ridge + Joliet, bootable
 * - by a BIOS from CD (El Torito, GRUB's i386-pc-eltorito image),
 * - by a BIOS from the same bytes written to a disk (GRUB's boot_hybrid.img in
 *   the MBR, xorriso `--grub2-mbr`/`--grub2-boot-info`),
 * - by UEFI from CD (El Torito EFI entry: a FAT image holding BOOTX64.EFI) and
 *   from disk (the same FAT image exposed as an EFI system partition).
 * This is the layout grub-mkrescue makes, written by xorriso, with GRUB from
 * Debian packages.
 *
 * Reproducible: every date is SOURCE_DATE_EPOCH (`--set_all_file_dates`, and
 * xorriso derives volume dates and the GPT GUIDs from SOURCE_DATE_EPOCH), the
 * volume id, publisher, preparer and application id are fixed strings, Rock
 * Ridge ownership is 0:0 (`-r`), and file order is xorriso's sorted order.
 */
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run } from '../util/exec.js';
import { makeFat } from './fat.js';
import type { GrubImages } from './grub.js';

export interface IsoInputs {
  /** Where to write the ISO. */
  out: string;
  workDir: string;
  /** ISO 9660 volume id: up to 32 of A-Z 0-9 _. */
  volumeId: string;
  epoch: number;
  grub: GrubImages;
  /** Files of the ISO besides GRUB's: kernel, initramfs, grub.cfg, marker (path -> data). */
  files: Map<string, Buffer>;
  /** Seed of the FAT serial number. */
  serial: number;
}

const MiB = 1024 * 1024;

/** A volume id from the system's name and version, as ISO 9660 d-characters. */
export function isoVolumeId(name: string, version: string): string {
  return `${name}_${version}`
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, '_')
    .slice(0, 32);
}

export async function writeIso(i: IsoInputs): Promise<void> {
  const root = join(i.workDir, 'iso-root');
  for (const [path, data] of i.files) {
    const p = join(root, path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, data);
  }
  mkdirSync(join(root, 'boot', 'grub'), { recursive: true });
  writeFileSync(join(root, 'boot', 'grub', 'bios.img'), i.grub.biosEltorito);

  // The El Torito EFI image: a small FAT holding EFI/BOOT/BOOTX64.EFI.
  const efiImg = join(root, 'boot', 'grub', 'efi.img');
  const efiBytes = Math.ceil((i.grub.efi.length + 512 * 1024) / MiB) * MiB;
  writeFileSync(efiImg, '');
  truncateSync(efiImg, efiBytes);
  await makeFat({
    image: efiImg,
    offset: 0,
    sectors: efiBytes / 512,
    label: 'KJX-EFI',
    serial: i.serial,
    fat32: false,
    files: [{ path: '/EFI/BOOT/BOOTX64.EFI', data: i.grub.efi }],
    epoch: i.epoch,
    workDir: i.workDir,
  });

  const hybridMbr = join(i.workDir, 'boot_hybrid.img');
  writeFileSync(hybridMbr, i.grub.biosHybridMbr);
  await run(
    'writing the ISO image',
    'xorriso',
    [
      '-as',
      'mkisofs',
      '-o',
      i.out,
      '--set_all_file_dates',
      `=${i.epoch}`,
      '-r',
      '-J',
      '-joliet-long',
      '-V',
      i.volumeId,
      '-volset',
      i.volumeId,
      '-publisher',
      'kjx',
      '-p',
      'kjx',
      '-A',
      'kjx-headless',
      '-b',
      'boot/grub/bios.img',
      '-no-emul-boot',
      '-boot-load-size',
      '4',
      '-boot-info-table',
      '--grub2-boot-info',
      '--grub2-mbr',
      hybridMbr,
      '--efi-boot',
      'boot/grub/efi.img',
      '-efi-boot-part',
      '--efi-boot-image',
      '--protective-msdos-label',
      root,
    ],
    { env: { ...(process.env as Record<string, string>), SOURCE_DATE_EPOCH: String(i.epoch), TZ: 'UTC' } },
  );
}
