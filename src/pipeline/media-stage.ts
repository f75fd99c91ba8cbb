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
import { rootSwitchFiles } from '../guest/root-switch.js';
import { writeMedia } from '../image/media.js';
import { mediaFormats, wantsDisk } from '../plan/media.js';
import type { ReproducibleTree } from '../rootfs/reproducible.js';
import { newTree, type Tree } from '../rootfs/tree.js';
import { type Cache, cacheTempDir } from '../sources/cache.js';
import type { Spec } from '../spec/schema.js';
import { sha256File } from '../util/hash-file.js';

export { mediaFormats, mediaKernelModules } from '../plan/media.js';

/** Files media add to the guest tree: the root switch for disk images. */
export function mediaLayer(spec: Spec): Tree {
  return wantsDisk(spec) ? rootSwitchFiles() : newTree();
}

export interface MediaArtifactsInputs {
  spec: Spec;
  buildId: string;
  /** The guest's tree after the reproducibility pass. */
  image: ReproducibleTree;
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
  const work = cacheTempDir(i.cache, 'media');
  try {
    const written = await writeMedia({
      name: i.spec.name,
      version: i.spec.version,
      buildId: i.buildId,
      formats,
      image: i.image,
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
