/**
 * The early step that makes a disk image's ext4 root the guest's root: a small
 * script the kernel runs *instead of* /init when the command line says
 * `rdinit=/usr/lib/kjx/switch-root` (GRUB's grub.cfg on a kjx disk does).
 *
 * It reads `kjx.root=UUID=...` (or `LABEL=...`, anything busybox `findfs`
 * understands), loads the disk and file system drivers, waits for the device,
 * mounts it read-write on /newroot, unmounts what it mounted and
 * `switch_root`s into the disk's own /init, which then boots exactly as it
 * would from the initramfs. Without `kjx.root=`, or when the root cannot be
 * found or mounted, it says so (marker `root status=failed`) and execs the
 * initramfs's /init, so the same initramfs still boots on its own.
 *
 * Nothing in /init or the runit stages changes: the hook is the kernel's
 * `rdinit=` parameter, and this file is only added to images whose outputs
 * include a disk format (raw, qcow2, vmdk). The shell is src/guest/sh/switch-root.sh.
 */
import { mk, newTree, type Tree } from '../rootfs/tree.js';
import { FW_CFG_MODULE, NONCE_FW_CFG_RAW } from './markers.js';
import { plainWords, readShFile, renderSh, type ShValues } from './sh-file.js';

/** Where the script lives in the image. */
export const SWITCH_ROOT = '/usr/lib/kjx/switch-root';

/** Drivers the root switch loads (built in or modules; missing ones are skipped). */
export const ROOT_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_scsi', 'sd_mod', 'ext4'] as const;

/** Seconds to wait for the root device to appear. */
const WAIT_SECONDS = 30;

/** Kernel command line words that make a boot switch into the file system `uuid`. */
export function rootSwitchCmdline(uuid: string): string[] {
  return [`rdinit=${SWITCH_ROOT}`, `kjx.root=UUID=${uuid}`];
}

/** The values switch-root.sh declares, as a disk image gets them. */
export function rootSwitchValues(): ShValues {
  return {
    KJX_ROOT_MODULES: plainWords(ROOT_MODULES, 'root switch modules'),
    KJX_ROOT_WAIT: WAIT_SECONDS,
    KJX_FW_CFG_MODULE: FW_CFG_MODULE,
    KJX_NONCE_RAW: NONCE_FW_CFG_RAW,
  };
}

/** The script (src/guest/sh/switch-root.sh). */
export function rootSwitchScript(values: ShValues = rootSwitchValues()): string {
  return renderSh(readShFile(new URL('./sh/switch-root.sh', import.meta.url)), values);
}

/** The layer that adds the script to an image. */
export function rootSwitchFiles(): Tree {
  const t = newTree();
  const src = { kind: 'generated', by: 'kjx root-switch' } as const;
  t.set(SWITCH_ROOT, mk.file(SWITCH_ROOT, rootSwitchScript(), src, 0o755));
  return t;
}
