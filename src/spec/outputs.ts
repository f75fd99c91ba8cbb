/**
 * The one catalogue of what `kjx build` writes (`outputs:` in kjx.yaml): for each
 * output, the writer (src/image/) that makes it, the file it puts in the output
 * directory, how `--artifact` boots it, and the Debian packages its writer needs
 * besides the guest's. The schema, the plan, the build, the media writer, the
 * commands that boot (`--artifact`) and `kjx inspect` all read it here, so an
 * output is one entry plus its writer.
 */
import { COMPRESSIONS, type Compression, EXTENSION } from '../util/compression.js';

/**
 * Artifact formats kjx writes: the kernel + initramfs, a hybrid BIOS/UEFI ISO,
 * GPT disk images with a persistent ext4 root (raw, qcow2, vmdk), a rootfs tar, a
 * container image archive (OCI layout + docker-save, src/image/oci.ts).
 */
export const OUTPUTS = ['initramfs', 'iso', 'raw', 'qcow2', 'vmdk', 'tar', 'oci'] as const;
export type OutputFormat = (typeof OUTPUTS)[number];
/** What a spec without `outputs` builds. */
export const DEFAULT_OUTPUTS: OutputFormat[] = ['initramfs'];

/**
 * Which writer makes an output: `initramfs` (image/cpio.ts, compressed, beside the
 * kernel), `iso` (image/iso.ts), `disk` (image/disk.ts: the raw image, converted by
 * qemu-img for the others), `tar` (image/tar-writer.ts), `oci` (image/oci.ts).
 */
export type OutputWriter = 'initramfs' | 'iso' | 'disk' | 'tar' | 'oci';

/** How `--artifact` boots an output: its kernel and initramfs directly, or the file as a CD-ROM or a disk. */
export type BootKind = 'kernel' | 'cdrom' | 'disk';

export interface OutputInfo {
  readonly writer: OutputWriter;
  /** Absent: `--artifact` cannot boot it. */
  readonly boot?: BootKind;
  /** Its file's name, for a system called `name`; the initramfs output writes `initramfsFiles` instead. */
  readonly file?: (name: string) => string;
  /** Debian packages its writer needs (they never enter the guest), in the plan with the rest. */
  readonly packages: readonly string[];
}

/** GRUB from Debian, for BIOS and UEFI, and the platform directory each package carries (image/grub.ts). */
export const GRUB_PACKAGES = [
  { name: 'grub-pc-bin', platform: 'i386-pc' },
  { name: 'grub-efi-amd64-bin', platform: 'x86_64-efi' },
] as const;

const GRUB: readonly string[] = GRUB_PACKAGES.map((p) => p.name);

export const OUTPUT_CATALOGUE = {
  initramfs: { writer: 'initramfs', boot: 'kernel', packages: [] },
  iso: { writer: 'iso', boot: 'cdrom', file: (name: string) => `${name}.iso`, packages: GRUB },
  raw: { writer: 'disk', boot: 'disk', file: (name: string) => `${name}.img`, packages: GRUB },
  qcow2: { writer: 'disk', boot: 'disk', file: (name: string) => `${name}.qcow2`, packages: GRUB },
  vmdk: { writer: 'disk', boot: 'disk', file: (name: string) => `${name}.vmdk`, packages: GRUB },
  tar: { writer: 'tar', file: (name: string) => `${name}.tar`, packages: [] },
  oci: { writer: 'oci', file: (name: string) => `${name}-oci.tar`, packages: [] },
} as const satisfies Record<OutputFormat, OutputInfo>;

type Catalogue = typeof OUTPUT_CATALOGUE;

/** The outputs `--artifact` boots. */
export type BootableOutput = {
  [K in OutputFormat]: Catalogue[K] extends { boot: BootKind } ? K : never;
}[OutputFormat];
/** The outputs that are one file named after the system (all but initramfs). */
export type FileOutput = {
  [K in OutputFormat]: Catalogue[K] extends { file: unknown } ? K : never;
}[OutputFormat];

/** What `--artifact` boots, in catalogue order. */
export const BOOTABLE_OUTPUTS: readonly BootableOutput[] = OUTPUTS.filter(
  (o): o is BootableOutput => 'boot' in OUTPUT_CATALOGUE[o],
);

/** The outputs a writer makes, in catalogue order. */
export function outputsOf(...writers: OutputWriter[]): OutputFormat[] {
  return OUTPUTS.filter((o) => writers.includes(OUTPUT_CATALOGUE[o].writer));
}

/** Outputs booted through a boot loader on the medium (GRUB): the CD-ROM and the disks. */
export function loaderBooted(o: OutputFormat): boolean {
  const boot = (OUTPUT_CATALOGUE[o] as OutputInfo).boot;
  return boot === 'cdrom' || boot === 'disk';
}

/** The file an output other than initramfs writes for a system called `name`. */
export function outputFileName(output: FileOutput, name: string): string {
  return OUTPUT_CATALOGUE[output].file(name);
}

/** The kernel the initramfs output writes beside it. */
export const KERNEL_FILE = 'vmlinuz';
/** Every build's list of files and artifacts (image/manifest.ts). */
export const MANIFEST_FILE = 'manifest.json';

/** The initramfs's file name for a compression: `initramfs.cpio.gz`, `initramfs.cpio` for none. */
export function initramfsFileName(compression: Compression): string {
  return `initramfs.cpio${EXTENSION[compression]}`;
}

/** The files of the initramfs output. */
export function initramfsFiles(compression: Compression): string[] {
  return [KERNEL_FILE, initramfsFileName(compression)];
}

/** Whether `name` is what the initramfs output calls its initramfs, for some compression. */
export function isInitramfsFileName(name: string): boolean {
  return COMPRESSIONS.some((c) => initramfsFileName(c) === name);
}

/** Debian packages the writers of `outputs` need, sorted, each once. */
export function outputPackages(outputs: readonly OutputFormat[]): string[] {
  return [...new Set(outputs.flatMap((o) => OUTPUT_CATALOGUE[o].packages))].sort();
}
