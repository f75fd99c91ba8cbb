/**
 * The stages of `kjx build`, in order: one entry each, run by `runStages`
 * (stage.ts). Before them, the build reads kjx.yaml (`spec`) and plans
 * (`resolve`, src/plan/plan.ts); each stage reads the Plan and the results of
 * the stages before it. A new stage (a kernel built from source, compiled BPF
 * programs) is one more entry here, keyed by what it reads.
 *
 *   fetch   the .debs of the stages that run (one apt download for all)
 *   base    components' files, whole packages, library closure   (cached: a Tree)
 *   kernel  vmlinuz and the module closure                        (cached: record, blob, Tree)
 *   programs  tracing.programs compiled against the kernel's BTF  (src/bpf/; cached by content there)
 *   files   `files:` and `images:` (read each time; keyed by content)
 *   write   guest system, merge, cpio, compression, outputs, manifest (the build's key)
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { programsTree } from '../bpf/stage.js';
import { refuseBadCheckNames } from '../guest/checks.js';
import { guestSystem } from '../guest/system.js';
import { accountIds } from '../guest/users.js';
import { writeCpio } from '../image/cpio.js';
import { type Manifest, manifestFiles } from '../image/manifest.js';
import { assembleBase, type DebInput } from '../plan/assemble.js';
import { explainModuleError, writeTimeFiles } from '../plan/components.js';
import type { OutputWriter, Plan } from '../plan/plan.js';
import { makeReproducible, type ReproducibleTree } from '../rootfs/reproducible.js';
import { ensureParents, mergeTrees, newTree, type Tree } from '../rootfs/tree.js';
import { getBlob, getRecord, getTree, putBlob, putRecord, putTree } from '../sources/cache.js';
import { fetchDebs } from '../sources/fetch.js';
import { readHostDir, readHostFile } from '../sources/host-files.js';
import { type KernelResult, kernelFromDeb, kernelFromLocal } from '../sources/kernel.js';
import { userFiles } from '../sources/user-files.js';
import { initramfsFileName, KERNEL_FILE, MANIFEST_FILE } from '../spec/outputs.js';
import type { Spec } from '../spec/schema.js';
import { portableProgram } from '../spec/values.js';
import { compress } from '../util/compression.js';
import { KjxError } from '../util/errors.js';
import { imagesLayer, ociFileName, ociOutput } from './images-stage.js';
import { mediaLayer, writeMediaArtifacts } from './media-stage.js';
import type { Artifact, Stage, StageContext } from './stage.js';

/** What the planning steps before the table are called in progress displays. */
export const PLANNING_STEPS = [
  { name: 'spec', title: 'Read kjx.yaml' },
  { name: 'resolve', title: 'Resolve Debian packages' },
] as const;

export function initramfsName(spec: Pick<Spec, 'compression'>): string {
  return initramfsFileName(spec.compression);
}

/** Where the image's kernel came from, as the manifest says it. */
function manifestKernelSource(plan: Plan): string {
  const k = plan.spec.kernel;
  const deb = plan.packages.kernel;
  const config = (c: typeof k & { kind: 'build' }) =>
    c.config
      .map((e) => (e.kind === 'profile' ? e.name : e.kind === 'file' ? e.pathRef : `${e.name}=${e.value}`))
      .join(',');
  if (k.kind === 'image') return `input:${k.imageRef}`;
  if (k.kind === 'build')
    return k.source.kind === 'tree'
      ? `built:tree:${k.source.pathRef}[${config(k)}]`
      : `built:deb:${deb!.name}=${deb!.version}[${config(k)}]`;
  return `deb:${deb!.name}=${deb!.version}`;
}

function portableKernel(k: Spec['kernel']): unknown {
  if (k.kind === 'image') return { ...k, image: k.imageRef, modulesDir: k.modulesDirRef };
  if (k.kind !== 'build') return k;
  return {
    ...k,
    source: k.source.kind === 'tree' ? { ...k.source, path: k.source.pathRef } : k.source,
    config: k.config.map((e) => (e.kind === 'file' ? { ...e, path: e.pathRef } : e)),
  };
}

/**
 * The spec as it bears on the artifacts: without the directory it was read from and
 * with host paths as written, so the same project in two checkouts builds the same bytes.
 * Component files count by content (the base stage's key), not by where they were read.
 */
export function portableSpec(spec: Spec): unknown {
  const { specDir: _dir, componentFiles: _files, ...rest } = spec;
  return {
    ...rest,
    kernel: portableKernel(spec.kernel),
    packages: spec.packages.map((p) => (p.kind === 'local' ? { ...p, path: p.pathRef } : p)),
    // where an entry sits in kjx.yaml is for messages: moving a line changes no byte
    files: spec.files.map(({ position: _at, ...f }) => ('from' in f ? { ...f, from: f.fromRef } : f)),
    users: spec.users.map((u) => ({
      ...u,
      authorizedKeys: u.authorizedKeys.map((k) => (k.kind === 'file' ? { ...k, path: k.pathRef } : k)),
    })),
    ssh: { ...spec.ssh, hostKeyFiles: spec.ssh.hostKeyFiles.map((f) => ({ ...f, path: f.pathRef })) },
    images: spec.images.map((i) => (i.kind === 'archive' ? { ...i, archive: i.archiveRef } : i)),
    // without programs the spec hashes as before they existed (same build id)
    tracing:
      spec.tracing.programs.length > 0
        ? { ...spec.tracing, programs: spec.tracing.programs.map(portableProgram) }
        : { libbpfTools: spec.tracing.libbpfTools },
  };
}

const fetchStage: Stage<Map<string, Buffer>> = {
  name: 'fetch',
  title: 'Fetch .deb files',
  async run(ctx) {
    const need = ctx.needed();
    const got = await fetchDebs(ctx.cache, need, {
      warn: ctx.warn,
      downloading: (list, bytes) =>
        ctx.progress(`downloading ${list.length} packages, ${(bytes / 1e6).toFixed(1)} MB`),
    });
    for (const [n, d] of got) ctx.debs.set(n, d);
    return { value: got, cached: need.length === 0, detail: `${need.length} needed, ${got.size} ready` };
  },
};

/** The base tree: every component's files, the packages taken whole, the library closure. */
const baseStage: Stage<Tree> = {
  name: 'base',
  title: 'Assemble components and library closure',
  key: (plan, code) => ({
    stage: 'base',
    code,
    components: plan.spec.components,
    // what components' files depend on besides packages (libbpf-tools: `tracing`; component files: content)
    ...plan.components.key,
    packages: (portableSpec(plan.spec) as Pick<Spec, 'packages'>).packages,
    debs: plan.packages.packages.map((p) => [p.name, p.sha256, p.root]),
    local: plan.packages.local.map((l) => l.sha256),
  }),
  debs: (plan) => plan.packages.packages,
  load: getTree,
  save: putTree,
  cachedDetail: (tree) => `${tree.size} entries`,
  async run(ctx) {
    const { plan } = ctx;
    const debs = await ctx.debsOf(plan.packages.packages);
    const inputs: DebInput[] = plan.packages.packages.map((p) => {
      const d: DebInput = { name: p.name, version: p.version, data: debs.get(p.name)! };
      const whole = plan.whole.get(p.name);
      if (whole) d.whole = whole;
      return d;
    });
    const { readDeb } = await import('../sources/deb.js');
    for (const l of plan.spec.packages) {
      if (l.kind !== 'local') continue;
      const data = readFileSync(l.path);
      const { control } = await readDeb(data, l.pathRef);
      inputs.push({
        name: control.Package ?? l.pathRef,
        version: control.Version ?? '0',
        data,
        whole: l.paths ? { paths: l.paths } : {},
      });
    }
    const parts = plan.components.components.map(
      ({ component }) =>
        (staged: (pkg: string) => Tree) =>
          component.assemble({ spec: plan.spec, staged, warn: ctx.warn }),
    );
    const tree = await assembleBase(parts, inputs, ctx.warn);
    return { value: tree, detail: `${tree.size} entries` };
  },
};

interface KernelRecord {
  vmlinuz: string;
  version: string;
  order: string[];
  builtin: string[];
}

const kernelStage: Stage<KernelResult> = {
  name: 'kernel',
  title: 'Kernel and module closure',
  key: (plan, code) => ({
    stage: 'kernel',
    code,
    kernelInput: plan.kernel.input,
    modules: plan.kernel.required,
    ...(plan.kernel.optional.length > 0 ? { optionalModules: plan.kernel.optional } : {}),
  }),
  debs: (plan) => (plan.packages.kernel ? [plan.packages.kernel] : []),
  load(cache, key) {
    const rec = getRecord<KernelRecord>(cache, key);
    const vmlinuz = rec && getBlob(cache, rec.vmlinuz);
    const modules = rec && getTree(cache, `${key}-modules`);
    if (!rec || !vmlinuz || !modules) return undefined;
    return { version: rec.version, vmlinuz, modules, order: rec.order, builtin: rec.builtin };
  },
  save(cache, key, k) {
    putTree(cache, `${key}-modules`, k.modules);
    putRecord(cache, key, {
      vmlinuz: putBlob(cache, k.vmlinuz),
      version: k.version,
      order: k.order,
      builtin: k.builtin,
    } satisfies KernelRecord);
  },
  cachedDetail: (k) => k.version,
  async run(ctx) {
    const { plan } = ctx;
    const { spec } = plan;
    const { required, optional } = plan.kernel;
    let k: KernelResult;
    if (spec.kernel.kind === 'build') {
      const { kernelFromSource } = await import('../kernel/from-source.js');
      const deb = plan.packages.kernel;
      k = await kernelFromSource({
        kernel: spec.kernel,
        ...(deb ? { deb: { ...deb, data: async () => (await ctx.debsOf([deb])).get(deb.name)! } } : {}),
        cache: ctx.cache,
        epoch: plan.epoch,
        warn: ctx.warn,
        progress: (t) => ctx.progress(t),
        required,
        optional,
      }).catch((e: unknown) => {
        throw explainModuleError(e, spec);
      });
    } else if (plan.packages.kernel) {
      const data = (await ctx.debsOf([plan.packages.kernel])).get(plan.packages.kernel.name)!;
      k = await kernelFromDeb(data, plan.packages.kernel, required, optional).catch((e: unknown) => {
        throw explainModuleError(e, spec);
      });
    } else {
      if (spec.kernel.kind !== 'image')
        throw new KjxError('INTERNAL', 'kernel package without a resolved package');
      const image = readHostFile(spec.kernel.image, 'kernel.image');
      const md = spec.kernel.modulesDir?.replace(/\/+$/, '');
      const modules = md
        ? readHostDir(md, `/lib/modules/${basename(md)}`, spec.kernel.modulesDirRef ?? md)
        : undefined;
      try {
        k = kernelFromLocal(image, modules, md, required, optional);
      } catch (e) {
        throw explainModuleError(e, spec);
      }
    }
    return { value: k, detail: `${k.version}, ${k.order.length} modules` };
  },
};

/**
 * `tracing.programs`, compiled against the BTF of the kernel stage's kernel, with
 * the libraries their loaders need from the base tree (src/bpf/). Each compile is
 * cached by content there, so the stage keeps no result of its own: its key
 * reaches the write stage's, and the toolchain counts in the cache keys only.
 */
const programsStage: Stage<Tree> = {
  name: 'programs',
  title: 'Compile eBPF programs (tracing.programs)',
  key: (plan, code, keys) =>
    plan.programs
      ? { stage: 'programs', code, sources: plan.programs.inputKey, kernel: keys.kernel, base: keys.base }
      : { stage: 'programs' },
  host: (plan) => plan.programs?.toolchain.id,
  async run(ctx) {
    const { programs } = ctx.plan;
    if (!programs) return { value: newTree(), cached: true, detail: 'none' };
    const kernel = ctx.result<KernelResult>('kernel');
    const r = await programsTree({
      programs,
      kernel: { vmlinuz: kernel.vmlinuz, version: kernel.version },
      base: ctx.result<Tree>('base'),
      cache: ctx.cache,
      progress: ctx.progress,
      warn: ctx.warn,
    });
    return { value: r.tree, cached: r.cached, detail: r.detail };
  },
};

interface FilesLayers {
  user: Tree;
  images: Tree;
}

/** `files:` and `images:`: read every build (by content they are in the write stage's key: Plan.filesKey). */
const filesStage: Stage<FilesLayers> = {
  name: 'files',
  title: 'Files from the spec',
  async run(ctx) {
    const { spec, epoch, packages } = ctx.plan;
    const user = userFiles(spec.files, accountIds(spec));
    // `images:` archives, baked into the guest (src/pipeline/images-stage.ts)
    const images = await imagesLayer({
      spec,
      epoch,
      pkgs: packages,
      debs: ctx.debs,
      cache: ctx.cache,
      warn: ctx.warn,
    });
    const n = spec.images.length;
    return {
      value: { user, images },
      detail: `${user.size} entries${n > 0 ? `, ${n} container image${n === 1 ? '' : 's'}` : ''}`,
    };
  },
};

/** What each output writer needs from the write stage. */
interface WriterInputs {
  ctx: StageContext;
  tree: Tree;
  /** The tree after the one reproducibility pass: what the file-system writers take. */
  image: ReproducibleTree;
  kernel: KernelResult;
  initramfs: Buffer;
  holdsPrivateKey: boolean;
}

/** The writers of the plan's outputs (Plan.outputs names one per format); each writes its artifacts. */
const WRITERS: Record<OutputWriter, (w: WriterInputs) => Promise<void>> = {
  async initramfs({ ctx, kernel, initramfs, holdsPrivateKey }) {
    ctx.emit(KERNEL_FILE, kernel.vmlinuz);
    ctx.emit(initramfsName(ctx.plan.spec), initramfs, holdsPrivateKey ? 0o600 : 0o644);
  },
  async media({ ctx, image, kernel, initramfs, holdsPrivateKey }) {
    const { plan } = ctx;
    const written = await writeMediaArtifacts({
      spec: plan.spec,
      buildId: ctx.buildId,
      image,
      vmlinuz: kernel.vmlinuz,
      initramfs,
      initramfsName: initramfsName(plan.spec),
      debs: ctx.debs,
      outDir: ctx.outDir,
      cache: ctx.cache,
      holdsPrivateKey,
      progress: ctx.progress,
    });
    for (const a of written) ctx.add(a);
  },
  async oci({ ctx, tree }) {
    ctx.progress('container image');
    ctx.emit(ociFileName(ctx.plan.spec), ociOutput(ctx.plan.spec, tree, ctx.plan.epoch, ctx.buildId));
  },
};

/** The guest system over the assembled layers, the initramfs, the outputs, the manifest. */
const writeStage: Stage<{ kernelVersion: string; artifacts: Artifact[] }> = {
  name: 'write',
  title: 'Write artifacts',
  key: (plan, code, keys) => ({
    stage: 'write',
    code,
    baseKey: keys.base,
    kernelKey: keys.kernel,
    filesKey: plan.filesKey,
    sshKey: plan.sshKey,
    ...(plan.programs ? { programsKey: keys.programs } : {}),
    spec: portableSpec(plan.spec),
    epoch: plan.epoch,
  }),
  // GRUB for media outputs
  debs: (plan) => plan.packages.boot,
  async run(ctx) {
    const { plan } = ctx;
    const { spec, epoch } = plan;
    const base = ctx.result<Tree>('base');
    const kernel = ctx.result<KernelResult>('kernel');
    const files = ctx.result<FilesLayers>('files');
    const programs = ctx.result<Tree>('programs');
    const guestCtx = {
      spec,
      epoch,
      kernel: { modules: kernel.order, builtin: kernel.builtin },
      base,
      warn: ctx.warn,
    };
    const componentFiles = writeTimeFiles(plan.components, guestCtx);
    const guest = guestSystem({
      spec,
      buildId: ctx.buildId,
      modules: kernel.order,
      ssh: plan.ssh,
      components: plan.components,
    });
    const tree = mergeTrees([
      guest.tree,
      base,
      kernel.modules,
      guest.overrides,
      mediaLayer(spec),
      componentFiles,
      programs,
      files.images,
      files.user,
    ]);
    ensureParents(tree);
    refuseBadCheckNames(tree);
    // the one reproducibility pass: every writer below takes its result
    const image = makeReproducible(tree, epoch);
    const initramfs = await compress(writeCpio(image), spec.compression);
    // host key files from the spec are in the tree: whatever holds the tree is as secret as they are
    const holdsPrivateKey = plan.ssh.hostKeys.length > 0;
    const writers = [...new Set(plan.outputs.map((o) => o.writer))];
    // initramfs first, then media, then oci: the order artifacts are listed in
    for (const w of ['initramfs', 'media', 'oci'] as const)
      if (writers.includes(w)) await WRITERS[w]({ ctx, tree, image, kernel, initramfs, holdsPrivateKey });
    const artifacts = ctx.artifacts();
    const manifest: Manifest = {
      name: spec.name,
      version: spec.version,
      buildId: ctx.buildId,
      sourceDateEpoch: epoch,
      kernel: {
        version: kernel.version,
        source: manifestKernelSource(plan),
        modules: kernel.order,
        builtin: kernel.builtin,
      },
      packages: plan.packages.packages.map((p) => ({
        name: p.name,
        version: p.version,
        sha256: p.sha256,
        root: p.root,
      })),
      artifacts: artifacts.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
      files: manifestFiles(tree),
    };
    ctx.emit(MANIFEST_FILE, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
    return {
      value: { kernelVersion: kernel.version, artifacts: ctx.artifacts() },
      detail: `${tree.size} entries, ${(initramfs.length / 1e6).toFixed(2)} MB initramfs`,
    };
  },
};

/** The build, stage by stage. */
export const BUILD_STAGES: readonly Stage[] = [
  fetchStage,
  baseStage,
  kernelStage,
  programsStage,
  filesStage,
  writeStage,
] as Stage[];

/** Every step a build reports, with its title: the planning steps, then the stages. */
export const STAGES: readonly { name: string; title: string }[] = [
  ...PLANNING_STEPS,
  ...BUILD_STAGES.map(({ name, title }) => ({ name, title })),
];
