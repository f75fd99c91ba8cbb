/** Options shared by the commands that start VMs. */
import type { Command } from 'commander';
import { KjxError, type WarnFn } from '../util/errors.js';

export interface AccelChoice {
  accel: 'kvm' | 'tcg';
  reason: string;
}

/** `--accel auto|kvm|tcg` to a concrete accelerator (auto probes once per host and kernel). */
export async function resolveAccel(requested: string, kernel: string): Promise<AccelChoice> {
  if (requested !== 'auto' && requested !== 'kvm' && requested !== 'tcg') {
    throw new KjxError('USAGE', `--accel ${requested}: expected auto, kvm or tcg`);
  }
  if (requested === 'tcg') return { accel: 'tcg', reason: 'requested' };
  // a build with media outputs only has no kernel in dist/ to probe KVM with
  if (kernel === '' && requested === 'kvm') return { accel: 'kvm', reason: 'requested (not probed)' };
  if (kernel === '') {
    return {
      accel: 'tcg',
      reason: 'no kernel artifact to probe KVM with (outputs without initramfs); using TCG',
    };
  }
  const { chooseAccel } = await import('../vm/accel.js');
  const { openCache } = await import('../sources/cache.js');
  const c = await chooseAccel(requested, { kernel, cacheDir: openCache().root });
  return { accel: c.accel, reason: c.reason + (c.cached ? ' (cached verdict)' : '') };
}

export interface BuiltImage {
  kernel: string;
  /** The kernel's sha256 from the build record (saves hashing it again). */
  kernelSha256?: string;
  initrd: string;
  manifest: import('../image/manifest.js').Manifest;
  cmdline: string;
  buildId: string;
  specPath: string;
  /** The spec's name and outputs, and every artifact the build wrote (for `--artifact`). */
  name: string;
  outputs: string[];
  artifacts: { name: string; path: string }[];
  /** Guest memory when `--memory` is not given: what the spec's components need (at least 512 MiB). */
  memoryMiB: number;
  /** The guest port dropbear listens on (`ssh.port`): what `kjx boot` forwards. */
  sshPort: number;
  /** `vm.restrict`: user-mode networking that reaches neither the host nor beyond it. */
  restrict: boolean;
}

function kernelSha(artifacts: { name: string; sha256: string }[]): { kernelSha256?: string } {
  const sha = artifacts.find((a) => a.name === 'vmlinuz')?.sha256;
  return sha ? { kernelSha256: sha } : {};
}

/**
 * Bring the image up to date (a no-op when nothing changed) and return what boots
 * it. The build's warnings go to `warn` (the CLI's prints them, or fails under --strict).
 */
export async function builtImage(specPath: string, outDir: string, warn: WarnFn): Promise<BuiltImage> {
  const { readFileSync } = await import('node:fs');
  const { resolve } = await import('node:path');
  const { build } = await import('../pipeline/build.js');
  const { loadSpec } = await import('../spec/load.js');
  const built = await build({ specPath, outDir, warn });
  // '' when the spec's outputs have no initramfs (media only): `--artifact` then boots a medium
  const path = (pred: (n: string) => boolean) => built.artifacts.find((a) => pred(a.name))?.path ?? '';
  const spec = loadSpec(specPath);
  const { defaultMemoryMiB } = await import('../components/hooks.js');
  return {
    kernel: path((n) => n === 'vmlinuz'),
    ...kernelSha(built.artifacts),
    initrd: path((n) => n.startsWith('initramfs')),
    manifest: JSON.parse(
      readFileSync(
        path((n) => n === 'manifest.json'),
        'utf8',
      ),
    ),
    cmdline: spec.kernel.cmdline,
    buildId: built.buildId,
    specPath: resolve(specPath),
    name: spec.name,
    outputs: [...spec.outputs],
    artifacts: built.artifacts.map((a) => ({ name: a.name, path: a.path })),
    memoryMiB: defaultMemoryMiB(spec),
    sshPort: spec.ssh.port,
    restrict: spec.vm.restrict,
  };
}

/** What `--artifact` boots: the initramfs directly, or one of the boot media. */
export const ARTIFACT_KINDS = ['initramfs', 'iso', 'raw', 'qcow2', 'vmdk'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

/** The boot part of a VmConfig for `--artifact KIND --firmware bios|uefi`. */
export type BootTarget = Pick<
  import('../vm/qemu-args.js').VmConfig,
  'kernel' | 'initrd' | 'cmdline' | 'media' | 'firmware'
> & { artifact: ArtifactKind };

/**
 * Check `--artifact` and `--firmware` (and that the spec builds that artifact)
 * before any build work; USAGE errors otherwise.
 */
export async function checkBootChoice(
  specPath: string,
  artifact: string,
  firmware: string,
): Promise<ArtifactKind> {
  if (!(ARTIFACT_KINDS as readonly string[]).includes(artifact)) {
    throw new KjxError('USAGE', `--artifact ${artifact}: expected ${ARTIFACT_KINDS.join(', ')}`);
  }
  if (firmware !== 'bios' && firmware !== 'uefi') {
    throw new KjxError('USAGE', `--firmware ${firmware}: expected bios or uefi`);
  }
  const kind = artifact as ArtifactKind;
  const { loadSpec } = await import('../spec/load.js');
  const outputs: string[] = [...loadSpec(specPath).outputs];
  if (!outputs.includes(kind)) {
    throw new KjxError(
      'USAGE',
      `--artifact ${kind}: the spec does not build ${kind} (outputs: [${outputs.join(', ')}])`,
      {
        hint: `add ${kind} to \`outputs:\` in ${specPath}${kind === 'initramfs' ? ', or boot a medium it builds with --artifact' : ''}`,
      },
    );
  }
  return kind;
}

/** The boot part of the VM for a checked `--artifact` and `--firmware` (UEFI: OVMF). */
export async function bootTarget(img: BuiltImage, kind: ArtifactKind, firmware: string): Promise<BootTarget> {
  const uefi =
    firmware === 'uefi'
      ? { firmware: { kind: 'uefi' as const, path: (await import('../vm/firmware.js')).findOvmf() } }
      : {};
  if (kind === 'initramfs')
    return { artifact: kind, kernel: img.kernel, initrd: img.initrd, cmdline: img.cmdline, ...uefi };
  const { mediaFileName } = await import('../image/media.js');
  const file = mediaFileName(img.name, kind);
  const found = img.artifacts.find((a) => a.name === file);
  if (!found) throw new KjxError('USAGE', `--artifact ${kind}: the build wrote no ${file}`);
  const { vmMediaFor } = await import('../vm/boot-media.js');
  return {
    artifact: kind,
    kernel: '',
    cmdline: '',
    // snapshot=on: the next build checks dist/ by hash and would rewrite a changed disk anyway
    media: { ...vmMediaFor(found.path), snapshot: true },
    ...(firmware === 'uefi' ? uefi : { firmware: { kind: 'bios' as const } }),
  };
}

/** `--memory` when given, else what the image's components need. */
export function memoryOption(value: unknown, img: Pick<BuiltImage, 'memoryMiB'>): number {
  return value === undefined ? img.memoryMiB : numberOption('memory', value, 64);
}

/** Parse a numeric option, or a USAGE error naming it. */
export function numberOption(name: string, value: unknown, min: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min)
    throw new KjxError('USAGE', `--${name} must be a number >= ${min}, got "${value}"`);
  return n;
}

/** The options `kjx boot` and `kjx run` share: what to boot, and on what. */
export function addVmOptions(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'spec file', 'kjx.yaml')
    .option('-o, --out <dir>', 'artifact directory (built first if out of date)', 'dist')
    .option(
      '--artifact <kind>',
      'what to boot: initramfs, iso, raw, qcow2 or vmdk (guest writes to a disk are not kept)',
      'initramfs',
    )
    .option('--firmware <kind>', 'bios or uefi (OVMF)', 'bios')
    .option('--accel <accel>', 'auto, kvm or tcg', 'auto')
    .option('-m, --memory <MiB>', 'guest memory (default: 512, more for container runtimes)')
    .option('--cpus <n>', 'guest CPUs', '1');
}
