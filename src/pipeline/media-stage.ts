/**
 * What media outputs (iso, raw, qcow2, vmdk, tar) add to `kjx build`, kept in
 * one place so build.ts only calls in:
 *
 * - disk outputs add the root switch (src/guest/root-switch.ts) to the tree and
 *   its drivers to the kernel modules, so the initramfs can mount the ext4 root;
 * - after the initramfs is written, `writeMediaArtifacts` writes the asked-for
 *   formats (src/image/media.ts) in a scratch directory of the cache and returns
 *   them as artifacts (hashed from the file: disk images are large).
 */
import { rmSync, statSync } from 'node:fs';
import { FW_CFG_MODULE } from '../guest/markers.js';
import { ROOT_MODULES, rootSwitchFiles } from '../guest/root-switch.js';
import { BOOT_FORMATS, DISK_FORMATS, MEDIA_FORMATS, type MediaFormat, writeMedia } from '../image/media.js';
import { newTree, type Tree } from '../rootfs/tree.js';
import { type Cache, cacheTempDir } from '../sources/cache.js';
import type { Spec } from '../spec/schema.js';
import { sha256File } from '../util/hash-file.js';

export function mediaFormats(spec: Spec): MediaFormat[] {
  return MEDIA_FORMATS.filter((f) => (spec.outputs as string[]).includes(f));
}

function wantsDisk(spec: Spec): boolean {
  return mediaFormats(spec).some((f) => DISK_FORMATS.includes(f));
}

/**
 * The spec's kernel modules, plus the root switch's drivers when a disk image is
 * built from a Debian kernel package (which has them all), and qemu_fw_cfg for
 * any bootable medium. A kernel from the host
 * keeps its list as given: it needs ext4 and its disk driver built in, or listed.
 */
export function mediaKernelModules(spec: Spec): string[] {
  if (spec.kernel.kind !== 'package') return spec.kernel.modules;
  const extra: string[] = [
    ...(wantsDisk(spec) ? ROOT_MODULES : []),
    // `kjx run --artifact MEDIUM` hands the command over fw_cfg (docs/guest-protocol.md)
    ...(mediaFormats(spec).some((f) => BOOT_FORMATS.includes(f)) ? [FW_CFG_MODULE] : []),
  ];
  return [...spec.kernel.modules, ...extra.filter((m) => !spec.kernel.modules.includes(m))];
}

/** Files media add to the guest tree: the root switch for disk images. */
export function mediaLayer(spec: Spec): Tree {
  return wantsDisk(spec) ? rootSwitchFiles() : newTree();
}

export interface MediaArtifactsInputs {
  spec: Spec;
  buildId: string;
  epoch: number;
  tree: Tree;
  vmlinuz: Buffer;
  initramfs: Buffer;
  initramfsName: string;
  /** .deb bytes by package name; must hold the GRUB packages when a boot format is asked for. */
  debs: Map<string, Buffer>;
  /** The tree holds a private key: its artifacts are written 0600. */
  holdsPrivateKey: boolean;
  outDir: string;
  cache: Cache;
  progress?: (text: string) => void;
}

export async function writeMediaArtifacts(
  i: MediaArtifactsInputs,
): Promise<{ name: string; path: string; size: number; sha256: string }[]> {
  const formats = mediaFormats(i.spec);
  if (formats.length === 0) return [];
  const work = cacheTempDir(i.cache, `media-${process.pid}`);
  try {
    const written = await writeMedia({
      name: i.spec.name,
      version: i.spec.version,
      buildId: i.buildId,
      epoch: i.epoch,
      formats,
      tree: i.tree,
      vmlinuz: i.vmlinuz,
      initramfs: i.initramfs,
      initramfsName: i.initramfsName,
      cmdline: i.spec.kernel.cmdline,
      diskSize: i.spec.disk.size,
      grubDebs: i.debs,
      outDir: i.outDir,
      workDir: work,
      holdsPrivateKey: i.holdsPrivateKey,
      ...(i.progress ? { progress: i.progress } : {}),
    });
    return written.map((a) => ({
      name: a.name,
      path: a.path,
      size: statSync(a.path).size,
      sha256: sha256File(a.path),
    }));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
