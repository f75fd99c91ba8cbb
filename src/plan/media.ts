/**
 * What media outputs (iso, raw, qcow2, vmdk, tar) ask of the plan: which formats
 * the spec's outputs hold, and the kernel modules their boot needs (the root
 * switch's drivers for disk images, fw_cfg for every bootable medium).
 */
import { FW_CFG_MODULE } from '../guest/markers.js';
import { ROOT_MODULES } from '../guest/root-switch.js';
import { BOOT_FORMATS, DISK_FORMATS, MEDIA_FORMATS, type MediaFormat } from '../image/media.js';
import type { Spec } from '../spec/schema.js';

export function mediaFormats(spec: Pick<Spec, 'outputs'>): MediaFormat[] {
  return MEDIA_FORMATS.filter((f) => (spec.outputs as string[]).includes(f));
}

export function wantsDisk(spec: Pick<Spec, 'outputs'>): boolean {
  return mediaFormats(spec).some((f) => DISK_FORMATS.includes(f));
}

/**
 * The spec's kernel modules, plus the root switch's drivers when a disk image is
 * built from a Debian kernel package (which has them all) or a kernel kjx builds
 * (its modules directory says which are built in), and qemu_fw_cfg for any
 * bootable medium. A kernel image from the host
 * keeps its list as given: it needs ext4 and its disk driver built in, or listed.
 */
export function mediaKernelModules(spec: Pick<Spec, 'outputs' | 'kernel'>): string[] {
  if (spec.kernel.kind === 'image') return spec.kernel.modules;
  const extra: string[] = [
    ...(wantsDisk(spec) ? ROOT_MODULES : []),
    // `kjx run --artifact MEDIUM` hands the command over fw_cfg (docs/guest-protocol.md)
    ...(mediaFormats(spec).some((f) => BOOT_FORMATS.includes(f)) ? [FW_CFG_MODULE] : []),
  ];
  return [...spec.kernel.modules, ...extra.filter((m) => !spec.kernel.modules.includes(m))];
}
