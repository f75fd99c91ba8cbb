/**
 * What QEMU loads for a direct kernel boot, chosen for speed under emulation
 * (docs/boot-time.md, "Unpacked on the host"):
 *
 * - the kernel as the uncompressed ELF vmlinux through its PVH entry point, when
 *   it has one, instead of the bzImage whose decompressor would run emulated;
 *   unpacked once per kernel into the cache (`kernels/<sha256 of the bzImage>`),
 *   checked against its own sha256 each time it is handed out (a damaged one is
 *   unpacked again);
 * - the initramfs decompressed, when it is small: the kernel then only copies it;
 *   inflated once per image into the cache (`initrds/<sha256 of the image>.cpio`).
 *
 * Both fall back to the artifacts as built, which is also what media boots and
 * UEFI (OVMF has no PVH loader) get. The image bytes never change: this is how
 * the runner hands them to QEMU.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PVH_READER, pvhVmlinux } from '../rootfs/bzimage.js';
import { type Cache, openCache } from '../sources/cache.js';
import { writeFileAtomic } from '../util/atomic.js';
import { decompressAny } from '../util/compression.js';
import { sha256Matches } from '../util/file-stamp.js';
import { sha256 } from '../util/hash.js';

/** The kernel file to hand QEMU, and whether it is the PVH vmlinux. */
export interface DirectKernel {
  path: string;
  pvh: boolean;
  /** Why the bzImage is used as it is. */
  why?: string;
}

/** The cached PVH vmlinux of `bzImagePath`, unpacking it on first use; the bzImage itself when that cannot work. */
export async function directKernel(
  bzImagePath: string,
  /** The bzImage's sha256 when the caller has it (the build record), else it is hashed here. */
  knownSha256?: string,
  cache: Cache = openCache(),
): Promise<DirectKernel> {
  if (process.env.KJX_NO_PVH === '1') return { path: bzImagePath, pvh: false, why: 'KJX_NO_PVH=1' };
  const bz = knownSha256 ? undefined : readFileSync(bzImagePath);
  const base = join(cache.root, 'kernels', knownSha256 ?? sha256(bz!));
  const elf = `${base}.vmlinux`;
  // the vmlinux's own sha256, written before it: the name only says which bzImage it came from
  const elfSha = `${elf}.sha256`;
  const no = `${base}.no-pvh-${PVH_READER}`;
  if (existsSync(elf)) {
    if (intact(elf, elfSha)) return { path: elf, pvh: true };
    // damaged: dropped and unpacked again, never booted
    dropCopy(elf, elfSha);
  }
  if (existsSync(no)) return { path: bzImagePath, pvh: false, why: readFileSync(no, 'utf8').trim() };
  let r: Awaited<ReturnType<typeof pvhVmlinux>>;
  try {
    r = await pvhVmlinux(bz ?? readFileSync(bzImagePath), bzImagePath);
  } catch (e) {
    // a kernel kjx cannot read is booted as it is, and asked again next time:
    // nothing is remembered about it, so a newer kjx (or a passing failure) can do better
    return { path: bzImagePath, pvh: false, why: e instanceof Error ? e.message : String(e) };
  }
  if (r.ok) {
    writeFileAtomic(elfSha, `${sha256(r.vmlinux)}\n`);
    writeFileAtomic(elf, r.vmlinux);
    return { path: elf, pvh: true };
  }
  // the verdict is about this file as this reader sees it
  writeFileAtomic(no, `${r.why}\n`);
  return { path: bzImagePath, pvh: false, why: r.why };
}

/** A damaged cached copy goes with its recorded sha256 and stat stamp. */
function dropCopy(file: string, shaFile: string): void {
  for (const f of [file, shaFile, `${file}.stamp`]) rmSync(f, { force: true });
}

/** Does the cached file still hash to what was recorded when it was written? */
function intact(file: string, shaFile: string): boolean {
  try {
    // read again only when it changed since the last look (50 MB: 60 ms of every run)
    return sha256Matches(file, readFileSync(shaFile, 'utf8').trim(), `${file}.stamp`);
  } catch {
    return false;
  }
}

/**
 * Above this, the initramfs stays compressed: while the kernel unpacks it,
 * the archive and its files are both in guest memory.
 */
export const DECOMPRESS_INITRD_MAX = 64 << 20;

/** The initramfs as QEMU should load it: decompressed when that leaves a small cpio archive. */
export async function directInitrd(initrd: Buffer, name: string): Promise<Buffer> {
  // compression ratios of initramfs images stay below 4: a bigger one cannot fit
  if (initrd.length > DECOMPRESS_INITRD_MAX / 4) return initrd;
  const raw = await decompressAny(initrd, name);
  const isCpio = raw.toString('latin1', 0, 6) === '070701';
  return raw !== initrd && isCpio && raw.length <= DECOMPRESS_INITRD_MAX ? raw : initrd;
}

/**
 * The file QEMU should load as the initramfs at `initrdPath` (directInitrd), kept in the
 * cache as `initrds/<sha256 of the image>.cpio` so each boot neither inflates nor copies
 * it: the image itself when it stays compressed. The cached copy is checked against its
 * own sha256 when handed out, like the vmlinux.
 */
export async function directInitrdFile(
  initrdPath: string,
  /** The image's sha256 when the caller has it (the build record), else it is hashed here. */
  knownSha256?: string,
  cache: Cache = openCache(),
): Promise<string> {
  // compression ratios of initramfs images stay below 4 (directInitrd): a bigger one is not read
  const small = () => statSync(initrdPath).size <= DECOMPRESS_INITRD_MAX / 4;
  if (!knownSha256 && !small()) return initrdPath;
  const image = knownSha256 ? undefined : readFileSync(initrdPath);
  const base = join(cache.root, 'initrds', knownSha256 ?? sha256(image!));
  const cpio = `${base}.cpio`;
  const cpioSha = `${cpio}.sha256`;
  const keep = `${base}.as-is`;
  if (existsSync(cpio)) {
    if (intact(cpio, cpioSha)) return cpio;
    dropCopy(cpio, cpioSha);
  }
  if (existsSync(keep) || !small()) return initrdPath;
  const bytes = image ?? readFileSync(initrdPath);
  const raw = await directInitrd(bytes, initrdPath);
  try {
    if (raw === bytes) {
      // already a cpio archive, or too big once inflated: booted as built, and not inflated again to learn that
      writeFileAtomic(keep, '');
      return initrdPath;
    }
    writeFileAtomic(cpioSha, `${sha256(raw)}\n`);
    // 0600: the image may hold host keys (ssh.hostKeyFiles)
    writeFileAtomic(cpio, raw, 0o600);
    return cpio;
  } catch {
    // a cache that cannot be written: the kernel inflates the image itself, a little slower
    return initrdPath;
  }
}
