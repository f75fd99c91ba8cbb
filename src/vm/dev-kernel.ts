/**
 * Booting a developer's own kernel with the image as built (`kjx run|boot --kernel
 * PATH`, docs/dev-kernel.md), the job vmtest and virtme-ng do: the initramfs stays
 * the one kjx.yaml built with Debian's kernel, and the kernel QEMU loads is the
 * developer's. What the image has of its own kernel (/lib/modules/<debian release>,
 * the load list /etc/kjx/modules) does not fit another kernel, so a second newc
 * archive goes after the image's, and the kernel, which unpacks concatenated
 * archives in order (later entries win), sees:
 *
 *   /lib/modules/<release>/   the developer's modules (see ALL_MODULES_MAX for which)
 *                             with modules.dep etc. from our depmod (module-closure.ts)
 *   /etc/kjx/modules          the image's wanted modules, as this kernel has them,
 *                             in load order (stage 1 modprobes them)
 *
 * QEMU takes one -initrd file, so the image's initramfs and the overlay are joined
 * into one file in the cache, `kernel-overlays/<key>.cpio`, keyed by both inputs and
 * checked against its own sha256 (as the unpacked vmlinux is, direct-boot.ts). The
 * kernel gets the image's fast entry: the PVH vmlinux unpacked from the bzImage.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { MODULES_LIST } from '../guest/layout.js';
import { moduleClosure, normalizeModuleName } from '../rootfs/module-closure.js';
import { addEntry, type EntrySource, mergeTrees, mk, newTree, type Tree } from '../rootfs/tree.js';
import { type Cache, openCache } from '../sources/cache.js';
import { type DevKernel, devModulesSize, makeLine, readDevModules } from '../sources/dev-kernel.js';
import { writeFileAtomic } from '../util/atomic.js';
import { compress, detectCompression } from '../util/compression.js';
import { isKjxError, KjxError, type WarnFn } from '../util/errors.js';
import { sha256Matches } from '../util/file-stamp.js';
import { hashValue, sha256 } from '../util/hash.js';
import { sha256File } from '../util/hash-file.js';
import { directInitrd } from './direct-boot.js';
import { appendPayload, overlayArchive } from './payload.js';

/**
 * Up to this many bytes of modules, the guest gets every module of the kernel, not
 * only those the image loads: a developer boots their own kernel to try the module
 * they just built (`modprobe vxlan`), which the image never asked for, and a kernel
 * configured for VMs has few modules (kjx's `vm` profile: 8, 10 MiB with debug info).
 * Above it (a distribution's configuration: thousands of modules, gigabytes with
 * debug info), all of them would not fit in the guest's memory, where the initramfs
 * lives twice while the kernel unpacks it; the guest then gets what the image loads
 * and what that needs, and `modprobe` of another module fails (docs/dev-kernel.md).
 */
export const ALL_MODULES_MAX = 64 << 20;

/** How many joined initramfs files the cache keeps (each is the image plus the modules). */
export const OVERLAYS_KEPT = 8;

/** Bump when the overlay's layout or the joined file's meaning changes. */
const OVERLAY_FORMAT = 1;

/**
 * Kernel options the guest system needs, and what breaks without them: a tree's
 * `.config` lacking one is a warning (the developer may know better), not an error.
 */
export const GUEST_KERNEL_NEEDS: readonly { option: string; why: string }[] = [
  { option: 'BLK_DEV_INITRD', why: 'the image is an initramfs: the kernel cannot find /init' },
  { option: 'SERIAL_8250_CONSOLE', why: 'the console is ttyS0: kjx sees nothing of the boot' },
  { option: 'DEVTMPFS', why: 'stage 1 mounts devtmpfs on /dev (else only the static /dev/console)' },
  {
    option: 'FW_CFG_SYSFS',
    why: "/init reads the boot's nonce over fw_cfg: without it kjx trusts no marker of the guest and runs fail",
  },
  { option: 'VIRTIO_PCI', why: 'no virtio device (console ports, network, disks) appears on q35' },
  {
    option: 'VIRTIO_CONSOLE',
    why: 'kjx run sends the command and reads its output over virtio-serial ports',
  },
];

/** What of the built image the overlay depends on. */
export interface DevKernelImage {
  /** The image's initramfs as built, and its sha256 when the build record has it. */
  initrd: string;
  initrdSha256?: string;
  /** The modules the image was built to load (`Plan.kernel`): missing required ones are warned about. */
  modules: { required: string[]; optional: string[] };
  /** Every path the image has: directories among them are left out of the overlay (their modes stay). */
  paths: Set<string>;
  /** The image's SOURCE_DATE_EPOCH: the overlay's dates. */
  epoch: number;
}

/** The overlay of one kernel for one image. */
export interface DevKernelOverlay {
  /** The newc archive to unpack after the image's. */
  cpio: Buffer;
  /** Every module the overlay holds, in load order. */
  modules: string[];
  /** What stage 1 loads: the image's wanted modules this kernel has as modules, with what they need. */
  load: string[];
  /** Whether every module of the kernel is there (ALL_MODULES_MAX), or only what `load` needs. */
  all: boolean;
}

/** What a direct boot hands QEMU for a developer's kernel. */
export interface DevKernelBoot {
  bzImage: string;
  bzImageSha256: string;
  /** The image's initramfs with the overlay after it, in the cache. */
  initrd: string;
  initrdSha256: string;
  release: string;
  overlay: Omit<DevKernelOverlay, 'cpio'>;
}

/** Warnings for options of GUEST_KERNEL_NEEDS a tree's `.config` does not set. */
export function configWarnings(k: DevKernel, warn: WarnFn): void {
  if (!k.config) return;
  for (const n of GUEST_KERNEL_NEEDS) {
    if (k.config.has(n.option)) continue;
    warn({
      code: 'DEV_KERNEL_CONFIG',
      message: `--kernel ${k.path}: CONFIG_${n.option} is not set: ${n.why}`,
    });
  }
}

/** The modules archive for `k` over `image` (reads the kernel's modules from the host). */
export function devKernelOverlay(
  k: DevKernel,
  image: DevKernelImage,
  warn: WarnFn,
  /** Up to this many bytes of modules, all of them (ALL_MODULES_MAX; tests choose smaller). */
  allMax = ALL_MODULES_MAX,
): DevKernelOverlay {
  const src: EntrySource = { kind: 'generated', by: 'kjx --kernel' };
  const { required, optional } = image.modules;
  const wanted = [...required, ...optional.filter((m) => !required.includes(m))];
  let modules: string[] = [];
  let load: string[] = [];
  let all = false;
  let tree: Tree = newTree();
  if (!k.modules) {
    if (required.length > 0)
      warn({
        code: 'DEV_KERNEL_NO_MODULES',
        message: `--kernel ${k.path} without --modules: the image's modules (${required.join(', ')}) are not loaded; the guest has only what the kernel has built in (--modules lib/modules/${k.release} brings the others)`,
      });
  } else {
    all = devModulesSize(k.modules) <= allMax;
    const names = all ? [...new Set([...k.modules.files.keys()].map(nameOf))] : wanted;
    const source = readDevModules(k.modules, k.release, all ? 'all' : wanted);
    const rebuild = (e: unknown): never => {
      if (!isKjxError(e)) throw e;
      throw new KjxError(e.code, `--kernel ${k.path}: ${e.message}`, {
        hint:
          k.kind === 'tree'
            ? `its modules do not match each other; build them again: ${makeLine(k.path, 'modules')}`
            : `--modules ${k.modules?.dir} does not hold a complete set of modules of one build`,
        cause: e,
      });
    };
    try {
      // the load list: what the image wants, as this kernel has it (built in, a module, or not at all)
      const w = moduleClosure(source, k.release, wanted, { optional: wanted, warn });
      load = w.order;
      const gone = w.missing.filter((m) => required.includes(m));
      if (gone.length > 0)
        warn({
          code: 'DEV_KERNEL_MODULE_MISSING',
          message: `--kernel ${k.path}: the image loads ${gone.join(', ')}, which the kernel ${k.release} has neither as a module nor built in`,
        });
      const c = all ? moduleClosure(source, k.release, names, { warn }) : w;
      modules = c.order;
      tree = c.tree;
    } catch (e) {
      rebuild(e);
    }
  }
  const list = newTree();
  addEntry(list, mk.file(MODULES_LIST, load.map((m) => `${m}\n`).join(''), src, 0o644));
  const cpio = overlayArchive(mergeTrees([tree, list]), image.paths, src, image.epoch);
  return { cpio, modules, load, all };
}

function nameOf(rel: string): string {
  return normalizeModuleName(rel.slice(rel.lastIndexOf('/') + 1));
}

/**
 * The image's initramfs followed by `overlay`, as one file in the cache (written once
 * per image and overlay, checked against its sha256 on every use). The image's part
 * is decompressed where an ephemeral run would decompress it (directInitrd), so the
 * overlay can follow uncompressed; a big image stays compressed, and the overlay is
 * compressed the same way after it, so that the joined file still decompresses as a
 * whole (decoders read concatenated members, and the kernel unpacks each in turn).
 */
export async function joinedInitrd(
  image: Pick<DevKernelImage, 'initrd' | 'initrdSha256'>,
  overlay: Buffer,
  cache: Cache = openCache(),
): Promise<{ path: string; sha256: string }> {
  const dir = join(cache.root, 'kernel-overlays');
  const key = hashValue({
    format: OVERLAY_FORMAT,
    image: image.initrdSha256 ?? sha256File(image.initrd),
    overlay: sha256(overlay),
  });
  const path = join(dir, `${key}.cpio`);
  const shaFile = `${path}.sha256`;
  if (existsSync(path)) {
    const sum = intact(path, shaFile);
    if (sum) {
      // its use is recorded on the sum file: touching the joined file would move its
      // ctime, and its stamp with it (a read of the whole file next time)
      const now = new Date();
      utimesSync(shaFile, now, now);
      return { path, sha256: sum };
    }
    // damaged: written again, never booted
    for (const f of [path, shaFile, `${path}.stamp`]) rmSync(f, { force: true });
  }
  const head = await directInitrd(readFileSync(image.initrd), image.initrd);
  const format = detectCompression(head);
  const tail = format === 'none' ? overlay : await compress(overlay, format);
  // a compressed member must follow the last directly: padding would read as a broken one
  const joined = format === 'none' ? appendPayload(head, tail) : Buffer.concat([head, tail]);
  const sum = sha256(joined);
  writeFileAtomic(shaFile, `${sum}\n`);
  // 0600: the image may hold host keys (ssh.hostKeyFiles)
  writeFileAtomic(path, joined, 0o600);
  pruneOverlays(dir, path);
  return { path, sha256: sum };
}

/** The recorded sha256 when the file still matches it. */
function intact(file: string, shaFile: string): string | undefined {
  try {
    const sum = readFileSync(shaFile, 'utf8').trim();
    return sha256Matches(file, sum, `${file}.stamp`) ? sum : undefined;
  } catch {
    return undefined;
  }
}

/** Keep the OVERLAYS_KEPT most recently used joined files (and always `keep`). */
function pruneOverlays(dir: string, keep: string): void {
  const used = (f: string) => {
    try {
      return statSync(`${f}.sha256`).mtimeMs;
    } catch {
      return 0;
    }
  };
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpio') && !f.startsWith('.'))
    .map((f) => join(dir, f))
    .filter((f) => f !== keep)
    .sort((a, b) => used(b) - used(a));
  for (const f of files.slice(OVERLAYS_KEPT - 1))
    for (const x of [f, `${f}.sha256`, `${f}.stamp`]) rmSync(x, { force: true });
}

/**
 * Everything a direct boot of `k` over `image` needs: the config checked, the overlay
 * made, the joined initramfs in the cache, the bzImage's sha256 (what the PVH vmlinux
 * is cached by, and a snapshot keyed).
 */
export async function devKernelBoot(
  k: DevKernel,
  image: DevKernelImage,
  warn: WarnFn,
  cache: Cache = openCache(),
): Promise<DevKernelBoot> {
  configWarnings(k, warn);
  const { cpio, ...overlay } = devKernelOverlay(k, image, warn);
  const initrd = await joinedInitrd(image, cpio, cache);
  return {
    bzImage: k.bzImage,
    bzImageSha256: sha256File(k.bzImage),
    initrd: initrd.path,
    initrdSha256: initrd.sha256,
    release: k.release,
    overlay,
  };
}
