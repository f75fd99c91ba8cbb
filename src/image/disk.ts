/**
 * Bootable disk images: a GPT disk with
 *
 *   1  BIOS boot   1 MiB   GRUB's core.img, loaded by GRUB's boot.img in the MBR
 *   2  EFI system  FAT32   EFI/BOOT/BOOTX64.EFI, /boot/{vmlinuz, initramfs, grub/grub.cfg}
 *   3  root        ext4    the Tree (label "kjx-root"), the rest of the disk
 *
 * bootable by a BIOS and by UEFI. GRUB boots the kernel and initramfs from the
 * ESP with `rdinit=/usr/lib/kjx/switch-root kjx.root=UUID=<root uuid>`; that
 * script mounts the ext4 root and switches into it (src/guest/root-switch.ts), so
 * what the guest writes persists.
 *
 * Rootless: the partition table and boot code are written by our own code
 * (gpt.ts, grub-bios.ts), the FAT by mtools and the ext4 by mke2fs + debugfs,
 * each into the image file at its partition's offset. Reproducible: GUIDs,
 * UUIDs and serials derive from the build id, every time is SOURCE_DATE_EPOCH.
 * qcow2 and vmdk are `qemu-img convert` of the raw image.
 */
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import type { ReproducibleTree } from '../rootfs/reproducible.js';
import type { Tree } from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { uuidFrom } from '../util/uuid.js';
import { ext4ContentBytes, writeExt4 } from './ext4.js';
import { makeFat } from './fat.js';
import { type GptLayout, PART_TYPES, SECTOR, usableRange, writeGpt } from './gpt.js';
import type { GrubImages } from './grub.js';
import { biosBootCode, patchCoreImage } from './grub-bios.js';

const MiB = 1024 * 1024;
export const ROOT_LABEL = 'kjx-root';
const BIOS_BOOT_LBA = 2048;

export interface DiskInputs {
  /** Where to write the raw image. */
  out: string;
  workDir: string;
  /** Size of the whole disk in bytes. */
  size: number;
  /** The root file system's tree; its epoch dates the ESP and the root. */
  root: ReproducibleTree;
  /** Seed of every GUID, UUID and serial (the build id). */
  seed: string;
  grub: GrubImages;
  /** Files of the ESP besides GRUB's: kernel, initramfs, grub.cfg, marker (path -> data). */
  espFiles: Map<string, Buffer>;
}

export interface DiskLayout {
  gpt: GptLayout;
  esp: { offset: number; sectors: number };
  root: { offset: number; size: number };
  rootUuid: string;
}

/** The root file system's UUID for a seed; the kernel command line names it before the disk exists. */
export function rootUuid(seed: string): string {
  return uuidFrom(`${seed}:root-fs`);
}

/** Sizes and places of the three partitions. Throws DISK_TOO_SMALL when the tree cannot fit. */
export function diskLayout(size: number, espContent: number, tree: Tree, seed: string): DiskLayout {
  const sectors = Math.floor(size / SECTOR);
  // FAT32 needs 65525 clusters: at least 33 MiB with 512-byte clusters; leave room for a kernel update
  const espBytes = Math.max(64 * MiB, Math.ceil((espContent * 2 + 16 * MiB) / MiB) * MiB);
  const espFirst = BIOS_BOOT_LBA + MiB / SECTOR;
  const rootFirst = espFirst + espBytes / SECTOR;
  const usable = usableRange(sectors);
  // end the root partition on a 4 KiB boundary below the backup table
  const rootLast = Math.floor((usable.last + 1) / 8) * 8 - 1;
  const rootBytes = (rootLast - rootFirst + 1) * SECTOR;
  const need = ext4ContentBytes(tree);
  // journal (up to 64 MiB), inode tables (1 per 16 KiB), 5% reserve and slack
  const minRoot = Math.ceil((need * 1.1) / MiB) * MiB + 48 * MiB;
  if (rootLast <= rootFirst || rootBytes < minRoot) {
    const minDisk = rootFirst * SECTOR + minRoot + MiB;
    throw new KjxError(
      'DISK_TOO_SMALL',
      `disk.size ${(size / MiB).toFixed(0)} MiB leaves ${Math.max(0, rootBytes / MiB).toFixed(0)} MiB for the root file system, which needs about ${(minRoot / MiB).toFixed(0)} MiB`,
      { hint: `set disk.size in kjx.yaml to at least ${Math.ceil(minDisk / MiB)}M` },
    );
  }
  const rootFsUuid = rootUuid(seed);
  return {
    gpt: {
      diskGuid: uuidFrom(`${seed}:disk`),
      sectors,
      partitions: [
        {
          type: PART_TYPES.biosBoot,
          guid: uuidFrom(`${seed}:bios-boot`),
          firstLba: BIOS_BOOT_LBA,
          lastLba: espFirst - 1,
          attributes: 0n,
          name: 'BIOS boot',
        },
        {
          type: PART_TYPES.esp,
          guid: uuidFrom(`${seed}:esp`),
          firstLba: espFirst,
          lastLba: rootFirst - 1,
          attributes: 0n,
          name: 'EFI system',
        },
        {
          type: PART_TYPES.rootX86_64,
          guid: uuidFrom(`${seed}:root`),
          firstLba: rootFirst,
          lastLba: rootLast,
          attributes: 0n,
          name: ROOT_LABEL,
        },
      ],
    },
    esp: { offset: espFirst * SECTOR, sectors: espBytes / SECTOR },
    root: { offset: rootFirst * SECTOR, size: rootBytes },
    rootUuid: rootFsUuid,
  };
}

function pwrite(fd: number, data: Buffer, position: number): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off, position + off);
}

/** Write the raw disk image; returns its layout. */
export async function writeDisk(d: DiskInputs): Promise<DiskLayout> {
  if (d.size % SECTOR !== 0) throw new KjxError('INTERNAL', 'disk size is not a whole number of sectors');
  const espContent = d.grub.efi.length + [...d.espFiles.values()].reduce((n, b) => n + b.length, 0);
  const layout = diskLayout(d.size, espContent, d.root.tree, d.seed);
  const core = patchCoreImage(d.grub.biosCore, BIOS_BOOT_LBA);
  if (core.length > MiB) throw new KjxError('INTERNAL', `GRUB core.img is ${core.length} bytes, over 1 MiB`);

  const fd = openSync(d.out, 'w', 0o644);
  try {
    ftruncateSync(fd, d.size); // sparse: unwritten ranges stay holes
  } finally {
    closeSync(fd);
  }
  await writeExt4({
    image: d.out,
    offset: layout.root.offset,
    size: layout.root.size,
    root: d.root,
    uuid: layout.rootUuid,
    hashSeed: uuidFrom(`${d.seed}:root-hash-seed`),
    label: ROOT_LABEL,
    workDir: d.workDir,
  });
  await makeFat({
    image: d.out,
    offset: layout.esp.offset,
    sectors: layout.esp.sectors,
    label: 'KJX-ESP',
    serial: Number.parseInt(uuidFrom(`${d.seed}:esp-serial`).slice(0, 8), 16),
    fat32: true,
    files: [
      { path: '/EFI/BOOT/BOOTX64.EFI', data: d.grub.efi },
      ...[...d.espFiles].map(([path, data]) => ({ path, data })),
    ],
    epoch: d.root.epoch,
    workDir: d.workDir,
  });
  const { head, tail } = writeGpt(layout.gpt, biosBootCode(d.grub.biosBootImg, BIOS_BOOT_LBA));
  const w = openSync(d.out, 'r+');
  try {
    pwrite(w, head, 0);
    pwrite(w, tail, (layout.gpt.sectors - tail.length / SECTOR) * SECTOR);
    pwrite(w, core, BIOS_BOOT_LBA * SECTOR);
  } finally {
    closeSync(w);
  }
  return layout;
}

/**
 * Make a monolithic sparse VMDK's embedded descriptor reproducible: qemu-img
 * writes a random content id (CID) and names the extent after the file it
 * wrote (our temporary name). Both are rewritten in place; the descriptor
 * area has a fixed size and no checksum (VMware "Virtual Disk Format 5.0").
 * The whole area is written, zero after the text, so what qemu-img left
 * behind the text's end does not reach the artifact.
 */
export function fixVmdkDescriptor(path: string, fileName: string, cid: number): void {
  const fd = openSync(path, 'r+');
  try {
    const h = Buffer.alloc(512);
    readSync(fd, h, 0, 512, 0);
    if (h.toString('latin1', 0, 4) !== 'KDMV') throw new KjxError('INTERNAL', `${path} is not a sparse VMDK`);
    const offset = Number(h.readBigUInt64LE(28)) * SECTOR;
    const size = Number(h.readBigUInt64LE(36)) * SECTOR;
    const d = Buffer.alloc(size);
    readSync(fd, d, 0, size, offset);
    // The text ends at the first NUL, as QEMU reads it: when qemu-img rewrites
    // the CID with a shorter number, the old text's last bytes stay after it.
    const raw = d.toString('latin1');
    const nul = raw.indexOf('\0');
    const text = nul < 0 ? raw : raw.slice(0, nul);
    const fixed = text
      .replace(/^CID=[0-9a-f]{1,8}$/m, `CID=${cid.toString(16).padStart(8, '0')}`)
      .replace(/^(RW \d+ SPARSE )"[^"]*"$/m, `$1"${fileName.replace(/"/g, '')}"`);
    const out = Buffer.alloc(size);
    if (out.write(fixed, 0, 'latin1') < Buffer.byteLength(fixed, 'latin1'))
      throw new KjxError('INTERNAL', 'VMDK descriptor does not fit its area');
    pwrite(fd, out, offset);
  } finally {
    closeSync(fd);
  }
}

/** qcow2 or vmdk from the raw image, with `qemu-img convert`. */
export async function convertDisk(raw: string, out: string, format: 'qcow2' | 'vmdk'): Promise<void> {
  const opts = format === 'qcow2' ? ['-o', 'compat=1.1'] : ['-o', 'subformat=monolithicSparse'];
  await run(`converting the disk image to ${format}`, 'qemu-img', [
    'convert',
    '-f',
    'raw',
    '-O',
    format,
    ...opts,
    raw,
    out,
  ]);
}
