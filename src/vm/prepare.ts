/**
 * Preparing a boot, once, for every kind of VM: read kjx.yaml once, check that it
 * builds what is to be booted, bring the build up to date (a no-op when nothing
 * changed; its warnings go to `warn`, which fails under `--strict`), then choose
 * what QEMU gets: memory (what the components want, or the caller's), CPUs, the
 * accelerator (probed, accel.ts), and the boot target: the kernel entry (the PVH
 * vmlinux unpacked from the bzImage, direct-boot.ts, or the bzImage where that cannot
 * work) with the initramfs, or a medium through its boot loader, and the firmware.
 * A developer's kernel (`--kernel`, dev-kernel.ts) replaces the image's in a direct
 * boot, with its modules in an archive after the image's initramfs.
 *
 * The result is a value: `launch.ts` starts any number of VMs from one (each with its
 * own state directory, nonce and sockets).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Manifest } from '../image/manifest.js';
import type { DevKernel } from '../sources/dev-kernel.js';
import { MICROVM_MODULE } from '../spec/machine.js';
import {
  BOOTABLE_OUTPUTS,
  type BootableOutput,
  isInitramfsFileName,
  KERNEL_FILE,
  MANIFEST_FILE,
} from '../spec/outputs.js';
import type { Spec } from '../spec/schema.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import type { Accel } from './guest.js';
import type { VmConfig, VmMedia } from './qemu-args.js';

/** What `--artifact` boots: the initramfs directly, or one of the boot media (spec/outputs.ts). */
export const ARTIFACT_KINDS = BOOTABLE_OUTPUTS;
export type ArtifactKind = BootableOutput;

export type AccelRequest = 'auto' | 'kvm' | 'tcg';

export interface AccelChoice {
  accel: Accel;
  reason: string;
}

/** The built image as the boot needs it. */
export interface BuiltImage {
  /** The bzImage as built ('' when the spec's outputs have no initramfs). */
  kernel: string;
  /** The kernel's sha256 from the build record (saves hashing it again). */
  kernelSha256?: string;
  /** '' when the spec's outputs have no initramfs (media only). */
  initrd: string;
  /** The initramfs's sha256 from the build record (a snapshot's key). */
  initrdSha256?: string;
  manifest: Manifest;
  cmdline: string;
  buildId: string;
  specPath: string;
  /** The spec's name and outputs, and every artifact the build wrote (for `--artifact`). */
  name: string;
  outputs: string[];
  artifacts: { name: string; path: string }[];
  /** Guest memory the spec's components want (at least 512 MiB). */
  memoryMiB: number;
  /** Guest memory its tracers want under `kjx trace` (at least 512 MiB; bpftrace's LLVM wants 2 GiB). */
  traceMemoryMiB: number;
  /** The kernel modules the image was built to load, as planned (what a `--kernel` boot loads of its own). */
  modules: { required: string[]; optional: string[] };
}

/** The boot part of a VM: a direct kernel boot, or a medium through its boot loader. */
export type BootChoice = DirectBoot | MediaBoot;

/** A direct kernel boot: kernel and initramfs. */
export interface DirectBoot {
  kind: 'direct';
  /** What QEMU loads: the PVH vmlinux when it has one, else the bzImage. */
  kernel: string;
  pvh: boolean;
  initrd: string;
  cmdline: string;
  firmware?: VmConfig['firmware'];
  /**
   * sha256 of the bzImage `kernel` comes from and of `initrd`, when known (a snapshot's
   * key, saved and restored machines must agree on them; else the files are hashed).
   */
  kernelSha256?: string;
  initrdSha256?: string;
  /** A developer's kernel booted in place of the image's (`--kernel`). */
  devKernel?: { path: string; release: string; modules: string[]; load: string[]; all: boolean };
}

/** A medium through its boot loader. */
export interface MediaBoot {
  kind: 'media';
  artifact: ArtifactKind;
  media: VmMedia;
  firmware: NonNullable<VmConfig['firmware']>;
}

export interface PrepareOptions {
  specPath: string;
  outDir: string;
  /** Receives the build's warnings (the CLI prints them, or stops under --strict). */
  warn: WarnFn;
  /** The spec, when the caller has parsed it already (it is not read again). */
  spec?: Spec;
  /** What to boot (default: the initramfs). */
  artifact?: ArtifactKind;
  firmware?: 'bios' | 'uefi';
  accel: AccelRequest;
  /**
   * Guest memory in MiB, or a choice given what the image's components want
   * (called after the build, so a flag read there is checked after the build has
   * said its warnings). Default: what the components want.
   */
  memoryMiB?: number | ((wanted: number, image: BuiltImage) => number);
  cpus?: number;
  /**
   * QEMU machine (default q35). `microvm` (virtio-mmio, no PCI, no firmware) boots
   * the initramfs directly, on a kernel with virtio_mmio (docs/boot-time.md).
   */
  machine?: VmMachine;
  /**
   * A developer's kernel to boot instead of the image's (`--kernel`): a built kernel
   * tree or a bzImage file (docs/dev-kernel.md). Direct boots of the initramfs only.
   */
  kernel?: string;
  /** With a bzImage `kernel`: its `lib/modules/<release>` directory (`--modules`). */
  modules?: string;
}

export interface Prepared {
  spec: Spec;
  image: BuiltImage;
  accel: AccelChoice;
  memoryMiB: number;
  cpus: number;
  machine: VmMachine;
  boot: BootChoice;
  /** The guest port dropbear listens on (`ssh.port`): what detached and console boots forward. */
  sshPort: number;
  /** `vm.restrict`: user-mode networking that reaches neither the host nor beyond it. */
  restrict: boolean;
  /** The project's private key next to kjx.yaml, when there is one (for SSH into detached VMs). */
  identity?: string;
}

/** USAGE unless the spec's outputs include `kind`. */
export function checkSpecBuilds(spec: Spec, specPath: string, kind: ArtifactKind, asked: boolean): void {
  const outputs: string[] = [...spec.outputs];
  if (outputs.includes(kind)) return;
  throw new KjxError(
    'USAGE',
    `${asked ? `--artifact ${kind}: ` : ''}the spec does not build ${kind} (outputs: [${outputs.join(', ')}])`,
    {
      hint: `add ${kind} to \`outputs:\` in ${specPath}${kind === 'initramfs' && asked ? ', or boot a medium it builds with --artifact' : ''}`,
    },
  );
}

/** The machines a boot can ask for (`--machine`). */
export const MACHINES = ['q35', 'microvm'] as const;
export type VmMachine = (typeof MACHINES)[number];

/** USAGE unless `--machine microvm` can apply: a direct boot of the initramfs, with SeaBIOS's place empty. */
export function checkMachineFlags(o: Pick<PrepareOptions, 'machine' | 'artifact' | 'firmware'>): void {
  if (o.machine !== 'microvm') return;
  if (o.artifact !== undefined && o.artifact !== 'initramfs')
    throw new KjxError(
      'USAGE',
      `--machine microvm with --artifact ${o.artifact}: microvm boots the kernel and initramfs directly (no CD-ROM, no boot loader)`,
      { hint: 'boot the initramfs (leave out --artifact), or boot the medium on q35' },
    );
  if (o.firmware === 'uefi')
    throw new KjxError('USAGE', '--machine microvm with --firmware uefi: microvm boots without OVMF', {
      hint: 'leave out --firmware, or boot on q35',
    });
}

/**
 * USAGE unless the image's kernel has virtio_mmio, built in or among the modules the
 * image loads: microvm's devices (console ports, network, entropy) are all on it.
 */
export function checkMicrovmKernel(img: Pick<BuiltImage, 'manifest' | 'specPath'>): void {
  const k = img.manifest.kernel;
  if (k.builtin.includes(MICROVM_MODULE) || k.modules.includes(MICROVM_MODULE)) return;
  throw new KjxError(
    'USAGE',
    `--machine microvm: the image's kernel (${k.version}) has no virtio_mmio, so the guest would see none of microvm's devices`,
    {
      hint: `add virtio_mmio to kernel.modules in ${img.specPath} (a kernel kjx builds has it built in)`,
    },
  );
}

/**
 * The same for a developer's kernel, when its `.config` says: built in, or a module
 * stage 1 loads (the image's wanted modules, as that kernel has them).
 */
export function checkMicrovmDevKernel(
  dev: Pick<DevKernel, 'path' | 'config'>,
  b: Pick<DirectBoot, 'devKernel'>,
): void {
  if (!dev.config) return;
  const v = dev.config.get('VIRTIO_MMIO');
  if (v === 'y' || b.devKernel?.load.includes(MICROVM_MODULE)) return;
  throw new KjxError(
    'USAGE',
    `--machine microvm: --kernel ${dev.path} has ${v === 'm' ? 'virtio_mmio as a module the image does not load' : 'no CONFIG_VIRTIO_MMIO'}, so the guest would see none of microvm's devices`,
    { hint: 'build it with CONFIG_VIRTIO_MMIO=y, or add virtio_mmio to kernel.modules of the image' },
  );
}

/** USAGE unless `--kernel`/`--modules` can apply: a direct boot of the initramfs, --modules with --kernel. */
export function checkKernelFlags(o: Pick<PrepareOptions, 'kernel' | 'modules' | 'artifact'>): void {
  if (o.modules !== undefined && o.kernel === undefined)
    throw new KjxError('USAGE', `--modules ${o.modules}: only with --kernel (the modules of that kernel)`, {
      hint: 'add --kernel with the bzImage these modules belong to',
    });
  if (o.kernel !== undefined && o.artifact !== undefined && o.artifact !== 'initramfs')
    throw new KjxError(
      'USAGE',
      `--kernel with --artifact ${o.artifact}: a boot medium boots the kernel inside it`,
      { hint: 'boot the initramfs (leave out --artifact) to try your kernel' },
    );
}

export async function prepareBoot(o: PrepareOptions): Promise<Prepared> {
  checkKernelFlags(o);
  checkMachineFlags(o);
  const machine = o.machine ?? 'q35';
  const { loadSpecCached } = await import('../pipeline/spec-cache.js');
  const spec = o.spec ?? (await loadSpecCached(o.specPath));
  const artifact = o.artifact ?? 'initramfs';
  checkSpecBuilds(spec, o.specPath, artifact, o.artifact !== undefined);
  // a wrong --kernel fails before any build work
  const dev =
    o.kernel === undefined
      ? undefined
      : (await import('../sources/dev-kernel.js')).openDevKernel(o.kernel, o.modules);
  const image = await buildImage(spec, o);
  if (machine === 'microvm' && !dev) checkMicrovmKernel(image);
  const memoryMiB =
    typeof o.memoryMiB === 'function'
      ? o.memoryMiB(image.memoryMiB, image)
      : (o.memoryMiB ?? image.memoryMiB);
  const accel = dev
    ? await chooseAccelFor(o.accel, dev.bzImage)
    : await chooseAccelFor(o.accel, image.kernel, image.kernelSha256);
  const chosen = dev
    ? await devKernelChoice(image, dev, o.firmware ?? 'bios', o.warn)
    : await bootChoice(image, artifact, o.firmware ?? 'bios');
  if (machine === 'microvm' && dev && chosen.kind === 'direct') checkMicrovmDevKernel(dev, chosen);
  const boot = machine === 'microvm' && accel.accel === 'tcg' ? await withTscRate(chosen) : chosen;
  const { projectKeyPath } = await import('../guest/ssh-keys.js');
  const key = projectKeyPath(dirname(image.specPath));
  return {
    spec,
    image,
    accel,
    memoryMiB,
    cpus: o.cpus ?? 1,
    machine,
    boot,
    sshPort: spec.ssh.port,
    restrict: spec.vm.restrict,
    ...(existsSync(key) ? { identity: key } : {}),
  };
}

/** Bring the image up to date (a no-op when nothing changed) and say what boots it. */
async function buildImage(spec: Spec, o: PrepareOptions): Promise<BuiltImage> {
  const { build } = await import('../pipeline/build.js');
  const built = await build({ specPath: o.specPath, spec, outDir: o.outDir, warn: o.warn });
  const path = (pred: (n: string) => boolean) => built.artifacts.find((a) => pred(a.name))?.path ?? '';
  const kernelSha256 = built.artifacts.find((a) => a.name === KERNEL_FILE)?.sha256;
  const initrdSha256 = built.artifacts.find((a) => isInitramfsFileName(a.name))?.sha256;
  return {
    ...(initrdSha256 ? { initrdSha256 } : {}),
    kernel: path((n) => n === KERNEL_FILE),
    ...(kernelSha256 ? { kernelSha256 } : {}),
    initrd: path(isInitramfsFileName),
    manifest: JSON.parse(
      readFileSync(
        path((n) => n === MANIFEST_FILE),
        'utf8',
      ),
    ) as Manifest,
    cmdline: spec.kernel.cmdline,
    buildId: built.buildId,
    specPath: resolve(o.specPath),
    name: spec.name,
    outputs: [...spec.outputs],
    artifacts: built.artifacts.map((a) => ({ name: a.name, path: a.path })),
    memoryMiB: built.plan.memoryMiB,
    traceMemoryMiB: built.plan.traceMemoryMiB,
    modules: { required: built.plan.kernel.required, optional: built.plan.kernel.optional },
  };
}

/**
 * A microvm boot under TCG with the host's TSC rate on its command line (tsc-rate.ts):
 * microvm has no timer to fall back on when the kernel's own calibration fails.
 */
async function withTscRate(b: BootChoice): Promise<BootChoice> {
  if (b.kind !== 'direct' || /(^|\s)tsc_early_khz=/.test(b.cmdline)) return b;
  const { tcgTscKhz } = await import('./tsc-rate.js');
  const { openCache } = await import('../sources/cache.js');
  const khz = await tcgTscKhz({ kernel: b.kernel, cacheDir: openCache().root });
  return { ...b, cmdline: `${b.cmdline} tsc_early_khz=${khz}` };
}

/** `auto|kvm|tcg` to a concrete accelerator (auto probes once per host and kernel). */
export async function chooseAccelFor(
  requested: AccelRequest,
  kernel: string,
  /** The kernel's sha256 from the build record, when known. */
  kernelSha256?: string,
): Promise<AccelChoice> {
  if (requested === 'tcg') return { accel: 'tcg', reason: 'requested' };
  // a build with media outputs only has no kernel in dist/ to probe KVM with
  if (kernel === '' && requested === 'kvm') return { accel: 'kvm', reason: 'requested (not probed)' };
  if (kernel === '') {
    return {
      accel: 'tcg',
      reason: 'no kernel artifact to probe KVM with (outputs without initramfs); using TCG',
    };
  }
  const { chooseAccel } = await import('./accel.js');
  const { openCache } = await import('../sources/cache.js');
  const c = await chooseAccel(requested, {
    kernel,
    cacheDir: openCache().root,
    ...(kernelSha256 ? { kernelSha256 } : {}),
  });
  return { accel: c.accel, reason: c.reason + (c.cached ? ' (cached verdict)' : '') };
}

async function uefiFirmware(firmware: 'bios' | 'uefi') {
  return firmware === 'uefi'
    ? { kind: 'uefi' as const, path: (await import('./firmware.js')).findOvmf() }
    : undefined;
}

/** The kernel QEMU loads for a bzImage: the PVH vmlinux skips the emulated decompression (direct-boot.ts); OVMF has no PVH loader. */
async function entryOf(bzImage: string, sha: string | undefined, uefi: boolean) {
  if (uefi) return { path: bzImage, pvh: false };
  const { directKernel } = await import('./direct-boot.js');
  return directKernel(bzImage, sha);
}

/** A direct boot of a developer's kernel with the image's initramfs and its modules after it (dev-kernel.ts). */
async function devKernelChoice(
  img: BuiltImage,
  dev: DevKernel,
  firmware: 'bios' | 'uefi',
  warn: WarnFn,
): Promise<BootChoice> {
  const { devKernelBoot } = await import('./dev-kernel.js');
  const b = await devKernelBoot(
    dev,
    {
      initrd: img.initrd,
      ...(img.initrdSha256 ? { initrdSha256: img.initrdSha256 } : {}),
      modules: img.modules,
      paths: new Set(img.manifest.files.map((f) => f.path)),
      epoch: img.manifest.sourceDateEpoch,
    },
    warn,
  );
  const uefi = await uefiFirmware(firmware);
  const k = await entryOf(b.bzImage, b.bzImageSha256, !!uefi);
  return {
    kind: 'direct',
    kernel: k.path,
    pvh: k.pvh,
    initrd: b.initrd,
    cmdline: img.cmdline,
    ...(uefi ? { firmware: uefi } : {}),
    kernelSha256: b.bzImageSha256,
    initrdSha256: b.initrdSha256,
    devKernel: { path: dev.path, release: b.release, ...b.overlay },
  };
}

/** The boot part of the VM for `artifact` and `firmware` (UEFI: OVMF). */
async function bootChoice(
  img: BuiltImage,
  artifact: ArtifactKind,
  firmware: 'bios' | 'uefi',
): Promise<BootChoice> {
  const uefi = await uefiFirmware(firmware);
  if (artifact === 'initramfs') {
    const k = await entryOf(img.kernel, img.kernelSha256, !!uefi);
    const { directInitrdFile } = await import('./direct-boot.js');
    return {
      kind: 'direct',
      kernel: k.path,
      pvh: k.pvh,
      initrd: img.initrd ? await directInitrdFile(img.initrd, img.initrdSha256) : '',
      cmdline: img.cmdline,
      ...(uefi ? { firmware: uefi } : {}),
      ...(img.kernelSha256 ? { kernelSha256: img.kernelSha256 } : {}),
      ...(img.initrdSha256 ? { initrdSha256: img.initrdSha256 } : {}),
    };
  }
  const { mediaFileName } = await import('../image/media.js');
  const file = mediaFileName(img.name, artifact);
  const found = img.artifacts.find((a) => a.name === file);
  if (!found) throw new KjxError('USAGE', `--artifact ${artifact}: the build wrote no ${file}`);
  const { vmMediaFor } = await import('./boot-media.js');
  return {
    kind: 'media',
    artifact,
    // snapshot=on: the next build checks dist/ by hash and would rewrite a changed disk anyway
    media: { ...vmMediaFor(found.path), snapshot: true },
    firmware: uefi ?? { kind: 'bios' },
  };
}
