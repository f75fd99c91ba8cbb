/**
 * The bootable media and the rootfs tarball of one build: ISO, raw/qcow2/vmdk
 * disks and tar, from the merged Tree, the kernel and the initramfs the 'write'
 * stage made. Each artifact is written to a temporary name in the output
 * directory and renamed when whole, like every other artifact.
 *
 * Every boot medium boots the same kernel and initramfs with the spec's command
 * line (plus console=ttyS0 when it names no console); a disk adds the root
 * switch (src/guest/root-switch.ts) so its ext4 root is the guest's root.
 */
import { closeSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { rootSwitchCmdline } from '../guest/root-switch.js';
import type { ReproducibleTree } from '../rootfs/reproducible.js';
import { type FileOutput, loaderBooted, outputFileName, outputsOf } from '../spec/outputs.js';
import { tempNameFor, writeFileAtomic } from '../util/atomic.js';
import { uuidFrom } from '../util/uuid.js';
import { convertDisk, fixVmdkDescriptor, rootUuid, writeDisk } from './disk.js';
import { grubConfig, grubImages, markerPath, mediaCmdline } from './grub.js';
import { isoVolumeId, writeIso } from './iso.js';
import { writeTar } from './tar-writer.js';

/** The outputs this module writes (spec/outputs.ts: the iso, disk and tar writers). */
export type MediaFormat = Extract<FileOutput, 'iso' | 'raw' | 'qcow2' | 'vmdk' | 'tar'>;
export const MEDIA_FORMATS = outputsOf('iso', 'disk', 'tar') as MediaFormat[];
export const DISK_FORMATS = outputsOf('disk') as MediaFormat[];
/** Formats with a boot loader (they need the GRUB packages). */
export const BOOT_FORMATS: readonly MediaFormat[] = MEDIA_FORMATS.filter(loaderBooted);

/** File name of each format's artifact. */
export function mediaFileName(name: string, format: MediaFormat): string {
  return outputFileName(format, name);
}

export interface MediaInputs {
  name: string;
  version: string;
  buildId: string;
  formats: MediaFormat[];
  /** The guest's tree, through the reproducibility pass: its epoch dates every medium. */
  image: ReproducibleTree;
  vmlinuz: Buffer;
  initramfs: Buffer;
  initramfsName: string;
  /** The spec's kernel command line. */
  cmdline: string;
  /** Size of disk images in bytes. */
  diskSize: number;
  /** .deb bytes of the GRUB packages (grub.ts GRUB_PACKAGES), when a boot format is asked for. */
  grubDebs: Map<string, Buffer>;
  outDir: string;
  /** Scratch directory, removed by the caller. */
  workDir: string;
  /** The tree holds a private key (`ssh.hostKeyFiles`): every format made of it is written 0600. */
  holdsPrivateKey?: boolean;
  progress?: (text: string) => void;
}

/**
 * Mode of a format's file: 0600 when it holds a private key, and always for
 * disks, whose first boot stores the generated SSH host keys in them.
 */
export function mediaFileMode(format: MediaFormat, holdsPrivateKey: boolean): number {
  return holdsPrivateKey || DISK_FORMATS.includes(format) ? 0o600 : 0o644;
}

export interface MediaArtifact {
  format: MediaFormat;
  name: string;
  path: string;
}

/** Write the asked-for formats; returns them in MEDIA_FORMATS order. */
export async function writeMedia(m: MediaInputs): Promise<MediaArtifact[]> {
  const out: MediaArtifact[] = [];
  const want = (f: MediaFormat) => m.formats.includes(f);
  const finish = (format: MediaFormat, tmp: string): void => {
    const name = mediaFileName(m.name, format);
    const path = join(m.outDir, name);
    renameSync(tmp, path);
    out.push({ format, name, path });
  };
  const temps: string[] = [];
  const temp = (format: MediaFormat): string => {
    const t = tempNameFor(join(m.outDir, mediaFileName(m.name, format)));
    temps.push(t);
    // created with its final mode before a tool writes into it: xorriso, qemu-img
    // and the disk writer keep an existing file's mode, so no secret is ever readable
    closeSync(openSync(t, 'w', mediaFileMode(format, m.holdsPrivateKey ?? false)));
    return t;
  };
  mkdirSync(m.outDir, { recursive: true });
  try {
    const boot = m.formats.some((f) => BOOT_FORMATS.includes(f));
    const marker = markerPath(m.buildId);
    const grub = boot ? await grubImages(m.grubDebs, marker, m.workDir) : undefined;
    const bootFiles = (extraCmdline: string[]): Map<string, Buffer> =>
      new Map([
        ['/boot/vmlinuz', m.vmlinuz],
        [`/boot/${m.initramfsName}`, m.initramfs],
        [
          '/boot/grub/grub.cfg',
          Buffer.from(
            grubConfig({
              title: `${m.name} ${m.version} (build ${m.buildId})`,
              kernel: '/boot/vmlinuz',
              initrd: `/boot/${m.initramfsName}`,
              cmdline: mediaCmdline(m.cmdline, extraCmdline),
            }),
          ),
        ],
        [marker, Buffer.from(`${m.buildId}\n`)],
      ]);

    if (want('iso')) {
      m.progress?.('ISO image');
      const tmp = temp('iso');
      await writeIso({
        out: tmp,
        workDir: join(m.workDir, 'iso'),
        volumeId: isoVolumeId(m.name, m.version),
        epoch: m.image.epoch,
        grub: grub!,
        files: bootFiles([]),
        serial: Number.parseInt(uuidFrom(`${m.buildId}:efi-image-serial`).slice(0, 8), 16),
      });
      finish('iso', tmp);
    }

    const disks = m.formats.filter((f) => DISK_FORMATS.includes(f));
    if (disks.length > 0) {
      m.progress?.(`disk image (${disks.join(', ')})`);
      const raw = temp('raw');
      await writeDisk({
        out: raw,
        workDir: join(m.workDir, 'disk'),
        size: m.diskSize,
        root: m.image,
        seed: m.buildId,
        grub: grub!,
        espFiles: bootFiles(rootSwitchCmdline(rootUuid(m.buildId))),
      });
      for (const f of ['qcow2', 'vmdk'] as const) {
        if (!want(f)) continue;
        const tmp = temp(f);
        await convertDisk(raw, tmp, f);
        if (f === 'vmdk') {
          const cid = Number.parseInt(uuidFrom(`${m.buildId}:vmdk-cid`).slice(0, 8), 16);
          fixVmdkDescriptor(tmp, mediaFileName(m.name, 'vmdk'), cid);
        }
        finish(f, tmp);
      }
      if (want('raw')) finish('raw', raw);
    }

    if (want('tar')) {
      m.progress?.('rootfs tar');
      const path = join(m.outDir, mediaFileName(m.name, 'tar'));
      writeFileAtomic(path, writeTar(m.image), mediaFileMode('tar', m.holdsPrivateKey ?? false));
      out.push({ format: 'tar', name: mediaFileName(m.name, 'tar'), path });
    }
  } finally {
    for (const t of temps) rmSync(t, { force: true });
  }
  const order = (a: MediaArtifact) => MEDIA_FORMATS.indexOf(a.format);
  return out.sort((a, b) => order(a) - order(b));
}
