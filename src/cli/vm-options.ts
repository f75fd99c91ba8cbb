/**
 * The options of the commands that boot VMs, declared once: what to boot
 * (`-f`, `-o`, `--artifact`, `--firmware`, `--kernel`, `--modules`), on what (`--accel`, `--memory`, `--cpus`),
 * and for how long (`--timeout`, `--silence`, which mean the same in `run`, `test`,
 * `trace` and `boot --detach`). Flags in, typed values out; the boot itself is
 * src/vm/prepare.ts and src/vm/launch.ts.
 */
import type { Command } from 'commander';
import { KjxError, type WarnFn } from '../util/errors.js';
import type { Limits } from '../vm/guest.js';
import {
  type AccelRequest,
  ARTIFACT_KINDS,
  type ArtifactKind,
  type BuiltImage,
  MACHINES,
  type Prepared,
  type PrepareOptions,
  type VmMachine,
} from '../vm/prepare.js';

type Flags = Record<string, unknown>;

/** Parse a numeric option, or a USAGE error naming it. */
export function numberOption(name: string, value: unknown, min: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min)
    throw new KjxError('USAGE', `--${name} must be a number >= ${min}, got "${value}"`);
  return n;
}

/** `--memory` when given, else what the image wants. */
export function memoryOption(value: unknown, wanted: number): number {
  return value === undefined ? wanted : numberOption('memory', value, 64);
}

/** What `--timeout` and `--silence` mean, for every command that boots (docs/cli.md says it once). */
export const LIMITS_DOC = [
  '`--timeout` and `--silence` mean the same in every command that boots a VM (`run`, `test`,',
  '`trace` and `boot --detach`); only their defaults differ. `--timeout S` is a wall-clock',
  "limit counted from QEMU's start, boot included, until the command's end (for `boot --detach`:",
  'until the guest is ready; for `trace --vm`, which boots nothing: from the traced',
  "command's start). `--silence S` is a limit on the time in which the guest printed",
  'nothing at all, on its console or from the command; 0 turns it off. Either limit ends',
  'the command and the VM kjx started for it, with exit status 124.',
].join('\n');

/** `--timeout` and `--silence` with this command's defaults (seconds). */
export function addLimitOptions(
  cmd: Command,
  defaults: { timeout: string; silence: string },
  until: string,
): Command {
  return cmd
    .option('--timeout <seconds>', `wall-clock limit from QEMU's start until ${until}`, defaults.timeout)
    .option(
      '--silence <seconds>',
      'end the VM after this long without any output from the guest (0 = never)',
      defaults.silence,
    );
}

/** The limits the flags give. */
export function limitFlags(o: Flags): Limits {
  return { timeoutS: numberOption('timeout', o.timeout, 1), silenceS: numberOption('silence', o.silence, 0) };
}

/** `--accel`, `--machine`, `--memory`, `--cpus`. */
export function addMachineOptions(
  cmd: Command,
  memoryDefault = 'default: 512, more for container runtimes',
): Command {
  return cmd
    .option('--accel <accel>', 'auto, kvm or tcg', 'auto')
    .option(
      '--machine <type>',
      'q35, or microvm: no PCI and no firmware (the initramfs only; the kernel needs virtio_mmio)',
      'q35',
    )
    .option('-m, --memory <MiB>', `guest memory (${memoryDefault})`)
    .option('--cpus <n>', 'guest CPUs', '1');
}

/** `--kernel` and `--modules`: a developer's kernel in place of the image's (docs/dev-kernel.md). */
export function addKernelOptions(cmd: Command): Command {
  return cmd
    .option(
      '--kernel <path>',
      'boot your own kernel with the image as built: a built kernel tree (or its O= directory) or a bzImage; the initramfs only',
    )
    .option(
      '--modules <dir>',
      'with a bzImage --kernel: its lib/modules/<release> directory (make modules_install)',
    );
}

/** `--kernel`/`--modules` checked, as PrepareOptions fields. */
export function kernelFlags(o: Flags): Pick<PrepareOptions, 'kernel' | 'modules'> {
  return {
    ...(o.kernel === undefined ? {} : { kernel: String(o.kernel) }),
    ...(o.modules === undefined ? {} : { modules: String(o.modules) }),
  };
}

/** `-f`, `-o`, `--artifact`, `--firmware`, `--kernel`, `--modules`. */
export function addImageOptions(cmd: Command): Command {
  const c = cmd
    .option('-f, --file <path>', 'spec file', 'kjx.yaml')
    .option('-o, --out <dir>', 'artifact directory (built first if out of date)', 'dist')
    .option(
      '--artifact <kind>',
      'what to boot: initramfs, iso, raw, qcow2 or vmdk (guest writes to a disk are not kept)',
      'initramfs',
    )
    .option('--firmware <kind>', 'bios or uefi (OVMF)', 'bios');
  return addKernelOptions(c);
}

/** The options `kjx boot`, `run` and `test` share: what to boot, and on what. */
export function addVmOptions(cmd: Command): Command {
  return addMachineOptions(addImageOptions(cmd));
}

/** `--cold` and `--no-save`: how `run`, `test` and `trace` use snapshots at ready (docs/boot-time.md). */
export function addSnapshotOptions(cmd: Command): Command {
  return cmd
    .option('--cold', 'boot, even when a snapshot of this VM at ready is saved')
    .option('--no-save', 'after a boot, save no snapshot at ready for the next run');
}

/** The launch's snapshot use from `--cold` and `--no-save`; snapshot warnings go to `warn`. */
export function snapshotFlags(o: Flags, warn: WarnFn): { restore: boolean; save: boolean; warn: WarnFn } {
  return { restore: !o.cold, save: o.save !== false, warn };
}

/** `--machine` checked. */
export function machineFlag(value: unknown): VmMachine {
  const v = String(value ?? 'q35');
  if (!(MACHINES as readonly string[]).includes(v))
    throw new KjxError('USAGE', `--machine ${v}: expected ${MACHINES.join(' or ')}`);
  return v as VmMachine;
}

/** `--accel` checked. */
export function accelFlag(value: unknown): AccelRequest {
  const v = String(value);
  if (v !== 'auto' && v !== 'kvm' && v !== 'tcg')
    throw new KjxError('USAGE', `--accel ${v}: expected auto, kvm or tcg`);
  return v;
}

/** `--artifact` and `--firmware` checked. */
export function bootFlags(o: Flags): { artifact: ArtifactKind; firmware: 'bios' | 'uefi' } {
  const artifact = String(o.artifact);
  if (!(ARTIFACT_KINDS as readonly string[]).includes(artifact))
    throw new KjxError('USAGE', `--artifact ${artifact}: expected ${ARTIFACT_KINDS.join(', ')}`);
  const firmware = String(o.firmware);
  if (firmware !== 'bios' && firmware !== 'uefi')
    throw new KjxError('USAGE', `--firmware ${firmware}: expected bios or uefi`);
  return { artifact: artifact as ArtifactKind, firmware };
}

/**
 * Prepare the boot the flags ask for (src/vm/prepare.ts). `--memory` is read once
 * the build has run; `memory` gives the default when it is not given.
 */
export async function prepareFromFlags(
  o: Flags,
  warn: WarnFn,
  more: Pick<PrepareOptions, 'spec'> & {
    specPath?: string;
    outDir?: string;
    memory?: (wanted: number, image: BuiltImage) => number;
  } = {},
): Promise<Prepared> {
  const { prepareBoot, checkKernelFlags, checkMachineFlags } = await import('../vm/prepare.js');
  const image = o.artifact === undefined ? {} : bootFlags(o);
  const kernel = kernelFlags(o);
  const machine = machineFlag(o.machine);
  // --artifact defaults to initramfs: an explicit other one with --kernel is refused
  checkKernelFlags({ ...kernel, ...image });
  checkMachineFlags({ machine, ...image });
  const cpus = numberOption('cpus', o.cpus, 1);
  const accel = accelFlag(o.accel);
  return prepareBoot({
    ...kernel,
    specPath: more.specPath ?? String(o.file),
    outDir: more.outDir ?? String(o.out),
    warn,
    ...(more.spec ? { spec: more.spec } : {}),
    ...image,
    accel,
    machine,
    cpus,
    memoryMiB: (wanted, image) => memoryOption(o.memory, more.memory?.(wanted, image) ?? wanted),
  });
}
