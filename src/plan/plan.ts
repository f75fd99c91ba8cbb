/**
 * Spec -> Plan: everything a build needs to know before it does any heavy work,
 * as one value. The components merged once (components.ts), the Debian packages
 * at exact versions (from kjx.lock, or apt through an injected AptIndex), the
 * files taken from each, the kernel modules and who asked for each, the
 * services, stage-1 lines, write-time hooks, the outputs and which writer makes
 * each, the guest memory, the smoke checks, and the inputs read from the host
 * (kernel image, `files:`, `images:` archives, SSH keys) by content, which the
 * build's cache keys and its build id are made of (src/pipeline/stages.ts).
 *
 * Planning reads the host files the spec names and may create the project SSH
 * key (a build input, docs/ARCHITECTURE.md); it never runs apt when the lock
 * answers, and tests give it a package index fixture instead of apt.
 */

import { type ProgramsPlan, planPrograms } from '../bpf/plan.js';
import { guestKernelModules } from '../guest/power-button.js';
import { type GuestService, guestServices, withBefore } from '../guest/services.js';
import { type SshInputs, sshInputs } from '../guest/ssh-keys.js';
import { manifestFiles } from '../image/manifest.js';
import { kernelBuildInput } from '../kernel/build.js';
import type { AptIndex } from '../sources/apt.js';
import { readHostDir, readHostFile } from '../sources/host-files.js';
import { userFilesKey } from '../sources/user-files.js';
import { MICROVM_MODULE } from '../spec/machine.js';
import type { OutputFormat, Spec } from '../spec/schema.js';
import { KjxError } from '../util/errors.js';
import { hashValue, sha256 } from '../util/hash.js';
import { sha256File } from '../util/hash-file.js';
import type { KnownValid } from '../util/known-valid.js';
import { type ComponentPlan, planComponents } from './components.js';
import { mediaFormats, mediaKernelModules } from './media.js';
import { type PackageSet, resolvePlanPackages } from './resolve.js';

/** The default SOURCE_DATE_EPOCH: 2024-01-01T00:00:00Z. */
export const DEFAULT_EPOCH = 1704067200;

/** A kernel module the image gets, and who asked for it. */
export interface PlannedModule {
  name: string;
  /** Taken when the kernel has it; a missing required one fails the kernel stage. */
  optional: boolean;
  /** `kernel.modules`, `media outputs`, `power button`, or component names. */
  askedBy: string[];
}

/** Which writer of the write stage makes an output (src/pipeline/stages.ts). */
export type OutputWriter = 'initramfs' | 'media' | 'oci';

export interface PlannedOutput {
  format: OutputFormat;
  writer: OutputWriter;
}

export interface Plan {
  /** The spec as the image has it: `components` with what they require (ComponentPlan.spec). */
  spec: Spec;
  /** SOURCE_DATE_EPOCH of the build: every file's time, and part of the build id. */
  epoch: number;
  components: ComponentPlan;
  packages: PackageSet;
  /**
   * Packages whose files are taken whole (every file but documentation) or by
   * globs: kjx.yaml's `packages:` and component files' `packages:`. Components
   * take their own files by exact path (their `assemble`).
   */
  whole: Map<string, { paths?: string[] }>;
  kernel: {
    /** What the kernel stage reads: the package's sha256, or the host image (and modules) by content. */
    input: unknown;
    /** Every module asked for, with who asked. */
    modules: PlannedModule[];
    /** The required ones in the kernel stage's order. */
    required: string[];
    /** The optional ones no one requires. */
    optional: string[];
  };
  /** Every service of the image: the spec's, the built-in ones that are on, the components'. */
  services: GuestService[];
  /** What the files stage reads: `files:` with host files by content, `images:` archives by content. */
  filesKey: string;
  /** SSH keys read from the host, and the project key when the spec gives none. */
  ssh: SshInputs;
  sshKey: string;
  outputs: PlannedOutput[];
  /** `tracing.programs`, their toolchain and sources (the programs stage); absent when there are none. */
  programs?: ProgramsPlan;
  /** Guest memory (MiB) for run, boot and test, and for trace. */
  memoryMiB: number;
  traceMemoryMiB: number;
}

export interface PlanOptions {
  /** kjx.lock; the spec's directory's by default. */
  lockPath: string;
  /** Resolve again (and rewrite the lock) even when it answers. */
  updateLock?: boolean;
  /** How packages are looked up when the lock does not answer (apt, or a fixture in tests). */
  index: AptIndex;
  /** SOURCE_DATE_EPOCH from the environment, when the spec gives none. */
  envEpoch?: string | undefined;
  /** Lock bytes checked before (util/known-valid.ts), taken without checking again. */
  knownLocks?: KnownValid;
}

/** The build's SOURCE_DATE_EPOCH: the spec's, the environment's, or DEFAULT_EPOCH. */
export function epochOf(spec: Spec, envEpoch: string | undefined): number {
  const epoch = spec.sourceDateEpoch ?? (envEpoch ? Number(envEpoch) : DEFAULT_EPOCH);
  if (!Number.isInteger(epoch) || epoch < 0)
    throw new KjxError('USAGE', `SOURCE_DATE_EPOCH must be a whole number of seconds, got "${envEpoch}"`);
  return epoch;
}

/**
 * Kernel modules in the kernel stage's order: the spec's and what media need,
 * then the guest system's (power button, fw_cfg), then the components'; optional
 * ones last. Each with who asked for it.
 */
export function planModules(spec: Spec, components: ComponentPlan): Plan['kernel']['modules'] {
  const out = new Map<string, PlannedModule>();
  const ask = (name: string, by: string, optional = false) => {
    const m = out.get(name);
    if (m) {
      if (!m.askedBy.includes(by)) m.askedBy.push(by);
      m.optional &&= optional;
    } else out.set(name, { name, optional, askedBy: [by] });
  };
  for (const m of mediaKernelModules(spec))
    ask(m, spec.kernel.modules.includes(m) ? 'kernel.modules' : 'media outputs');
  for (const m of guestKernelModules(spec)) ask(m, 'power button and boot nonce');
  // every kernel kjx builds has it built in (kjx.config), so --machine microvm finds it in the
  // manifest's built-ins; a packaged kernel has it as a module only when kernel.modules asks
  if (spec.kernel.kind === 'build') ask(MICROVM_MODULE, 'the microvm machine (--machine microvm)', true);
  for (const m of components.modules.required)
    for (const by of components.modules.askedBy.get(m) ?? []) ask(m, by);
  for (const m of components.modules.optional)
    for (const by of components.modules.askedBy.get(m) ?? []) ask(m, by, true);
  return [...out.values()];
}

/** What the kernel stage reads, by content: the package, the host image and modules directory, or what a kernel is built from. */
function kernelInput(spec: Spec, packages: PackageSet, epoch: number): unknown {
  if (spec.kernel.kind === 'package') return { deb: packages.kernel?.sha256 };
  // the build's timestamp is the kernel's too
  if (spec.kernel.kind === 'build')
    return { ...(kernelBuildInput(spec.kernel, packages.kernel?.sha256) as object), epoch };
  return {
    image: sha256(readHostFile(spec.kernel.image, 'kernel.image')),
    // a local modules directory is read whole each time; hash its contents
    modulesDir: spec.kernel.modulesDir
      ? hashValue(manifestFiles(readHostDir(spec.kernel.modulesDir, '/m', 'modules')))
      : null,
  };
}

/**
 * What the baked images depend on, for the files key: host archives by content
 * (they may change without the spec changing), built images by their entry (the
 * packages they are made of are in the base stage's key).
 */
export function imagesKey(spec: Spec): unknown[] {
  return spec.images.map((i) => (i.kind === 'archive' ? { name: i.name, sha256: sha256File(i.archive) } : i));
}

/** Packages taken whole or by globs; one that some entry takes whole is taken whole. */
function wholePackages(spec: Spec, components: ComponentPlan): Plan['whole'] {
  const whole: Plan['whole'] = new Map();
  const add = (name: string, globs: readonly string[] | undefined) => {
    const had = whole.get(name);
    if (!had) whole.set(name, globs ? { paths: [...globs] } : {});
    else if (!globs || !had.paths) whole.set(name, {});
    else whole.set(name, { paths: [...new Set([...had.paths, ...globs])] });
  };
  for (const p of spec.packages) if (p.kind === 'apt') add(p.name, p.paths);
  for (const t of components.whole) add(t.package, t.globs);
  return whole;
}

const WRITERS: Record<OutputFormat, OutputWriter> = {
  initramfs: 'initramfs',
  iso: 'media',
  raw: 'media',
  qcow2: 'media',
  vmdk: 'media',
  tar: 'media',
  oci: 'oci',
};

/**
 * Plan a build of `spec`: components, packages, kernel modules, inputs. The
 * cross-field rules are checked first, so a spec that cannot build fails before
 * apt is asked anything.
 * @throws KjxError SPEC_INVALID (positioned), lock and package errors, host input errors
 */
export async function planBuild(spec: Spec, opts: PlanOptions): Promise<Plan> {
  const components = planComponents(spec);
  const planned = components.spec;
  const epoch = epochOf(planned, opts.envEpoch);
  // before apt: a missing compiler is reported before anything is resolved or downloaded
  const programs = planPrograms(planned);
  const packages = await resolvePlanPackages({
    spec: planned,
    componentPackages: components.packages,
    lockPath: opts.lockPath,
    updateLock: opts.updateLock ?? false,
    index: opts.index,
    ...(opts.knownLocks ? { knownLocks: opts.knownLocks } : {}),
  });
  const modules = planModules(planned, components);
  const required = modules.filter((m) => !m.optional).map((m) => m.name);
  // taken when the kernel has them (containerd falls back to its native snapshotter without overlay)
  const optional = modules.filter((m) => m.optional).map((m) => m.name);
  // `images:` by content; a spec without them keeps the key (and build id) it had before
  const filesKey = hashValue(
    planned.images.length > 0
      ? { files: userFilesKey(planned.files), images: imagesKey(planned) }
      : userFilesKey(planned.files),
  );
  const ssh = sshInputs(planned);
  const sshKey = hashValue({
    authorizedKeys: [...ssh.authorizedKeys],
    hostKeys: ssh.hostKeys.map((k) => sha256(k)),
  });
  return {
    spec: planned,
    epoch,
    components,
    packages,
    whole: wholePackages(planned, components),
    kernel: { input: kernelInput(planned, packages, epoch), modules, required, optional },
    services: withBefore([...guestServices(planned), ...components.services]),
    filesKey,
    ssh,
    sshKey,
    outputs: planned.outputs.map((format) => ({ format, writer: WRITERS[format] })),
    ...(programs ? { programs } : {}),
    memoryMiB: components.memoryMiB,
    traceMemoryMiB: components.traceMemoryMiB,
  };
}

export { mediaFormats };
