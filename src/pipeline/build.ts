/**
 * `kjx build`: Spec -> packages (lock) -> .debs (cache) -> base Tree -> kernel ->
 * files -> initramfs + vmlinuz + manifest.
 *
 * Each stage is keyed by the hash of what it reads (and of kjx's own code); a stage
 * whose key is in the cache does no work, and a build whose final key matches the
 * artifacts already in the output directory does nothing at all. Artifacts are
 * written to temporary names and renamed, and the build record last, so a build
 * killed at any moment leaves the previous good artifacts or the new ones.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { programsInputKey } from '../bpf/compile.js';
import { programsStage } from '../bpf/stage.js';
import { requireToolchain } from '../bpf/toolchain.js';
import { componentGuest, componentModules, explainModuleError } from '../components/hooks.js';
import { refuseBadCheckNames } from '../guest/checks.js';
import { guestKernelModules } from '../guest/power-button.js';
import { sshInputs } from '../guest/ssh-keys.js';
import { guestSystem } from '../guest/system.js';
import { accountIds } from '../guest/users.js';
import { compress } from '../image/compress.js';
import { writeCpio } from '../image/cpio.js';
import { type Manifest, manifestFiles } from '../image/manifest.js';
import { type PackageSet, resolvePlanPackages } from '../plan/resolve.js';
import { assembleBase, type DebInput } from '../rootfs/assemble.js';
import { type KernelResult, kernelFromDeb, kernelFromLocal } from '../rootfs/kernel.js';
import { ensureParents, mergeTrees, type Tree } from '../rootfs/tree.js';
import { userFiles, userFilesKey } from '../rootfs/user-files.js';
import { type AptIndex, hostAptIndex } from '../sources/apt.js';
import {
  type Cache,
  getBlob,
  getRecord,
  getTree,
  openCache,
  putBlob,
  putRecord,
  putTree,
} from '../sources/cache.js';
import { fetchDebs } from '../sources/fetch.js';
import { readHostDir, readHostFile } from '../sources/host-files.js';
import { loadSpec } from '../spec/load.js';
import { portableProgram } from '../spec/programs.js';
import type { Spec } from '../spec/schema.js';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError, type WarnFn, type Warning } from '../util/errors.js';
import { hashValue, sha256 } from '../util/hash.js';
import { sha256File } from '../util/hash-file.js';
import { codeHash } from './code-hash.js';
import { imagesKey, imagesLayer, ociFileName, ociOutput } from './images-stage.js';
import { mediaKernelModules, mediaLayer, writeMediaArtifacts } from './media-stage.js';
import { STAGES, type StageName } from './stages.js';

/** kjx's release, from package.json (beside both src/ and build/). */
const KJX_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export { STAGES, type StageName };

/** The default SOURCE_DATE_EPOCH: 2024-01-01T00:00:00Z. */
export const DEFAULT_EPOCH = 1704067200;

export interface BuildEvents {
  stageStart?(name: StageName): void;
  stageEnd?(name: StageName, info: { cached: boolean; detail?: string; ms: number }): void;
  /** A line worth showing under the current stage (downloads, sizes). */
  progress?(name: StageName, text: string): void;
}

export interface BuildOptions {
  specPath: string;
  outDir: string;
  updateLock?: boolean;
  cache?: Cache;
  index?: AptIndex;
  events?: BuildEvents;
  warn?: WarnFn;
}

export interface Artifact {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

export interface BuildResult {
  buildId: string;
  artifacts: Artifact[];
  noop: boolean;
  ms: number;
  stages: { name: StageName; cached: boolean; ms: number; detail?: string }[];
  kernelVersion: string;
  lockChanged: boolean;
}

interface BuildRecord {
  key: string;
  buildId: string;
  artifacts: Artifact[];
  kernelVersion: string;
  /** What the build warned about: a no-op build says it again, so --strict holds. */
  warnings?: Warning[];
}

const RECORD = '.kjx-build.json';

export function initramfsName(spec: Spec): string {
  const ext = { gzip: '.gz', zstd: '.zst', xz: '.xz', none: '' }[spec.compression];
  return `initramfs.cpio${ext}`;
}

/**
 * The spec as it bears on the artifacts: without the directory it was read from and
 * with host paths as written, so the same project in two checkouts builds the same bytes.
 */
export function portableSpec(spec: Spec): unknown {
  const { specDir: _dir, ...rest } = spec;
  return {
    ...rest,
    kernel:
      spec.kernel.kind === 'image'
        ? { ...spec.kernel, image: spec.kernel.imageRef, modulesDir: spec.kernel.modulesDirRef }
        : spec.kernel,
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

/** Remove temporary files that builds killed mid-write left behind (their pid is gone). */
function sweepTemps(dir: string): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(name) ?? /-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid === process.pid;
    if (!alive) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch {
        alive = false;
      }
    }
    if (!alive) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

/** The output directory's build record; a damaged one counts as none (the build then runs). */
function readBuildRecord(path: string): BuildRecord | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const rec = JSON.parse(readFileSync(path, 'utf8')) as BuildRecord;
    return typeof rec?.key === 'string' && Array.isArray(rec.artifacts) ? rec : undefined;
  } catch {
    return undefined;
  }
}

function artifactsIntact(rec: BuildRecord): boolean {
  return rec.artifacts.every((a) => {
    try {
      // streamed: disk images can be gigabytes
      return statSync(a.path).size === a.size && sha256File(a.path) === a.sha256;
    } catch {
      return false;
    }
  });
}

/** Run the whole pipeline. Throws KjxError for anything the user can fix. */
export async function build(opts: BuildOptions): Promise<BuildResult> {
  const t0 = performance.now();
  const events = opts.events ?? {};
  // every warning is kept with what caused it (the build record, a cached stage) and
  // said again when that result is reused, so `--strict` does not depend on the cache
  const warnings: Warning[] = [];
  const warn: WarnFn = (w) => {
    warnings.push(w);
    opts.warn?.(w);
  };
  const stages: BuildResult['stages'] = [];
  const stage = async <T>(
    name: StageName,
    fn: () => Promise<{ value: T; cached: boolean; detail?: string }>,
  ): Promise<T> => {
    events.stageStart?.(name);
    const s = performance.now();
    const r = await fn();
    const ms = performance.now() - s;
    stages.push({ name, cached: r.cached, ms, ...(r.detail ? { detail: r.detail } : {}) });
    events.stageEnd?.(name, { cached: r.cached, ms, ...(r.detail ? { detail: r.detail } : {}) });
    return r.value;
  };

  const cache = opts.cache ?? openCache();
  sweepTemps(join(cache.root, 'tmp'));
  const outDir = resolve(opts.outDir);
  sweepTemps(outDir);

  const spec = await stage('spec', async () => ({ value: loadSpec(opts.specPath), cached: false }));
  const epoch =
    spec.sourceDateEpoch ??
    (process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : DEFAULT_EPOCH);
  if (!Number.isInteger(epoch) || epoch < 0) {
    throw new KjxError(
      'USAGE',
      `SOURCE_DATE_EPOCH must be a whole number of seconds, got "${process.env.SOURCE_DATE_EPOCH}"`,
    );
  }

  // tracing.programs: a missing compiler is reported before anything is downloaded
  const programs = spec.tracing.programs;
  const toolchain = programs.length > 0 ? requireToolchain(programs) : undefined;
  // their sources; the toolchain's identity (paths, mtimes) keys the cache, not the build id
  const programsKey = toolchain ? programsInputKey(programs, spec.specDir) : undefined;

  const pkgs: PackageSet = await stage('resolve', async () => {
    const set = await resolvePlanPackages({
      spec,
      lockPath: join(spec.specDir, 'kjx.lock'),
      updateLock: opts.updateLock ?? false,
      index: opts.index ?? hostAptIndex(),
    });
    return {
      value: set,
      cached: !set.lockChanged,
      detail: `${set.packages.length} packages${set.lockChanged ? ', kjx.lock written' : ' from kjx.lock'}`,
    };
  });

  const kernelInput =
    spec.kernel.kind === 'package'
      ? { deb: pkgs.kernel?.sha256 }
      : {
          image: sha256(readHostFile(spec.kernel.image, 'kernel.image')),
          // a local modules directory is read whole each time; hash its contents
          modulesDir: spec.kernel.modulesDir
            ? hashValue(manifestFiles(readHostDir(spec.kernel.modulesDir, '/m', 'modules')))
            : null,
        };
  // disk images add the drivers their root switch needs, components what they need
  const fromComponents = componentModules(spec);
  const kernelModules = [
    ...new Set([...mediaKernelModules(spec), ...guestKernelModules(spec), ...fromComponents.required]),
  ];
  // taken when the kernel has them (containerd falls back to its native snapshotter without overlay)
  const optionalModules = fromComponents.optional.filter((m) => !kernelModules.includes(m));
  // `images:` by content; a spec without them keeps the key (and build id) it had before
  const filesKey = hashValue(
    spec.images.length > 0
      ? { files: userFilesKey(spec.files), images: imagesKey(spec) }
      : userFilesKey(spec.files),
  );
  // the keys read from the host (and the project key, created here when the spec gives none)
  const ssh = sshInputs(spec);
  if (ssh.projectKey?.created)
    events.progress?.('spec', `created the project SSH key ${ssh.projectKey.path}`);
  const sshKey = hashValue({
    authorizedKeys: [...ssh.authorizedKeys],
    hostKeys: ssh.hostKeys.map((k) => sha256(k)),
  });
  // keys of each stage, computable before any heavy work; `code` names the kjx that builds
  const keysFor = (code: string, toolchainId?: string) => {
    const baseKey = hashValue({
      stage: 'base',
      code,
      components: spec.components,
      // the libbpf-tools component takes the tools `tracing` names
      ...(spec.components.includes('libbpf-tools')
        ? { tracing: { libbpfTools: spec.tracing.libbpfTools } }
        : {}),
      packages: (portableSpec(spec) as Pick<Spec, 'packages'>).packages,
      debs: pkgs.packages.map((p) => [p.name, p.sha256, p.root]),
      local: pkgs.local.map((l) => l.sha256),
    });
    const kernelKey = hashValue({
      stage: 'kernel',
      code,
      kernelInput,
      modules: kernelModules,
      ...(optionalModules.length > 0 ? { optionalModules } : {}),
    });
    const finalKey = hashValue({
      stage: 'write',
      code,
      baseKey,
      kernelKey,
      filesKey,
      sshKey,
      ...(programsKey ? { programsKey, ...(toolchainId ? { toolchainId } : {}) } : {}),
      spec: portableSpec(spec),
      epoch,
    });
    return { baseKey, kernelKey, finalKey };
  };
  // cache keys change with any change to kjx's code; the build id, which lands inside
  // the image, names the inputs and kjx's release instead, so the compiled CLI and the
  // sources of one release (or two checkouts of it) build the same bytes
  const { baseKey, kernelKey, finalKey } = keysFor(codeHash(), toolchain?.id);
  const buildId = keysFor(`kjx ${KJX_VERSION}`).finalKey.slice(0, 12);

  const recordPath = join(outDir, RECORD);
  const prev = readBuildRecord(recordPath);
  if (prev && prev.key === finalKey && artifactsIntact(prev)) {
    for (const w of prev.warnings ?? []) warn(w);
    for (const name of ['fetch', 'base', 'kernel', 'programs', 'files', 'write'] as const) {
      events.stageStart?.(name);
      stages.push({ name, cached: true, ms: 0 });
      events.stageEnd?.(name, { cached: true, ms: 0, detail: 'unchanged' });
    }
    return {
      buildId,
      artifacts: prev.artifacts,
      noop: true,
      ms: performance.now() - t0,
      stages,
      kernelVersion: prev.kernelVersion,
      lockChanged: pkgs.lockChanged,
    };
  }

  const haveBase = getRecord(cache, baseKey) !== undefined;
  const kernelRec = getRecord<{ vmlinuz: string; version: string; order: string[]; builtin: string[] }>(
    cache,
    kernelKey,
  );
  const needDebs = [
    ...(haveBase ? [] : pkgs.packages),
    ...(kernelRec || !pkgs.kernel ? [] : [pkgs.kernel]),
    ...pkgs.boot, // GRUB for media outputs
  ];

  const debs = await stage('fetch', async () => {
    const got = await fetchDebs(cache, needDebs, {
      warn,
      downloading: (list, bytes) =>
        events.progress?.('fetch', `downloading ${list.length} packages, ${(bytes / 1e6).toFixed(1)} MB`),
    });
    return {
      value: got,
      cached: needDebs.length === 0,
      detail: `${needDebs.length} needed, ${got.size} ready`,
    };
  });

  const base: Tree = await stage('base', async () => {
    const cached = haveBase ? getTree(cache, baseKey) : undefined;
    if (cached) {
      for (const w of getRecord<Warning[]>(cache, `${baseKey}-warnings`) ?? []) warn(w);
      return { value: cached, cached: true, detail: `${cached.size} entries` };
    }
    // a damaged cache entry reads as absent: the packages it spared were not fetched
    const unfetched = pkgs.packages.filter((p) => !debs.has(p.name));
    if (unfetched.length > 0) for (const [n, d] of await fetchDebs(cache, unfetched)) debs.set(n, d);
    const wholeByName = new Map<string, { paths?: string[] }>();
    for (const p of spec.packages)
      if (p.kind === 'apt') wholeByName.set(p.name, p.paths ? { paths: p.paths } : {});
    const inputs: DebInput[] = pkgs.packages.map((p) => {
      const d: DebInput = { name: p.name, version: p.version, data: debs.get(p.name)! };
      const whole = wholeByName.get(p.name);
      if (whole) d.whole = whole;
      return d;
    });
    const { readDeb } = await import('../sources/deb.js');
    for (const l of spec.packages) {
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
    const before = warnings.length;
    const tree = await assembleBase(spec, inputs, warn);
    // before the tree: a tree in the cache always has its warnings next to it
    putRecord(cache, `${baseKey}-warnings`, warnings.slice(before));
    putTree(cache, baseKey, tree);
    return { value: tree, cached: false, detail: `${tree.size} entries` };
  });

  const kernel: KernelResult = await stage('kernel', async () => {
    if (kernelRec) {
      const vmlinuz = getBlob(cache, kernelRec.vmlinuz);
      const modules = getTree(cache, `${kernelKey}-modules`);
      if (vmlinuz && modules) {
        return {
          value: {
            version: kernelRec.version,
            vmlinuz,
            modules,
            order: kernelRec.order,
            builtin: kernelRec.builtin,
          },
          cached: true,
          detail: kernelRec.version,
        };
      }
    }
    let k: KernelResult;
    if (pkgs.kernel) {
      let data = debs.get(pkgs.kernel.name);
      if (!data) data = (await fetchDebs(cache, [pkgs.kernel], { warn })).get(pkgs.kernel.name)!;
      k = await kernelFromDeb(data, pkgs.kernel, kernelModules, optionalModules).catch((e: unknown) => {
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
        k = kernelFromLocal(image, modules, md, kernelModules, optionalModules);
      } catch (e) {
        throw explainModuleError(e, spec);
      }
    }
    putTree(cache, `${kernelKey}-modules`, k.modules);
    putRecord(cache, kernelKey, {
      vmlinuz: putBlob(cache, k.vmlinuz),
      version: k.version,
      order: k.order,
      builtin: k.builtin,
    });
    return { value: k, cached: false, detail: `${k.version}, ${k.order.length} modules` };
  });

  // compiled against the kernel's BTF; only libc is taken from the base tree
  const programsTree: Tree = await stage('programs', async () => {
    if (!toolchain) return { value: new Map(), cached: true, detail: 'none' };
    const r = await programsStage({
      programs,
      specDir: spec.specDir,
      toolchain,
      kernel: { vmlinuz: kernel.vmlinuz, version: kernel.version },
      base,
      cache,
      progress: (text) => events.progress?.('programs', text),
      warn,
    });
    return { value: r.tree, cached: r.cached, detail: r.detail };
  });

  const files = await stage('files', async () => {
    const t = userFiles(spec.files, accountIds(spec));
    // `images:` archives, baked into the guest (src/pipeline/images-stage.ts)
    const images = await imagesLayer({ spec, epoch, pkgs, debs, cache, warn });
    const n = spec.images.length;
    return {
      value: { user: t, images },
      cached: false,
      detail: `${t.size} entries${n > 0 ? `, ${n} container image${n === 1 ? '' : 's'}` : ''}`,
    };
  });

  const result = await stage('write', async () => {
    if (!spec.components.includes('busybox') && !spec.components.includes('busybox-static')) {
      throw new KjxError(
        'SPEC_INVALID',
        'the guest init needs a shell: the busybox or busybox-static component',
        {
          hint: 'add busybox to `components:` in kjx.yaml',
        },
      );
    }
    if (!spec.components.includes('runit')) {
      throw new KjxError('SPEC_INVALID', 'the guest init is runit: the runit component is missing', {
        hint: 'add runit to `components:` in kjx.yaml',
      });
    }
    const fromComponents = componentGuest({
      spec,
      epoch,
      kernel: { modules: kernel.order, builtin: kernel.builtin },
      base,
      warn,
    });
    const guest = guestSystem({ spec, buildId, modules: kernel.order, ssh, components: fromComponents });
    const tree = mergeTrees([
      guest.tree,
      base,
      kernel.modules,
      guest.overrides,
      mediaLayer(spec),
      fromComponents.files,
      programsTree,
      files.images,
      files.user,
    ]);
    ensureParents(tree);
    refuseBadCheckNames(tree);
    const cpio = writeCpio(tree, { epoch });
    const initrd = await compress(cpio, spec.compression);
    const artifacts: Artifact[] = [];
    // host key files from the spec are in the tree: whatever holds the tree is as secret as they are
    const holdsPrivateKey = ssh.hostKeys.length > 0;
    const emit = (name: string, data: Buffer, mode = 0o644): void => {
      const path = join(outDir, name);
      writeFileAtomic(path, data, mode);
      artifacts.push({ name, path, size: data.length, sha256: sha256(data) });
    };
    if (spec.outputs.includes('initramfs')) {
      emit('vmlinuz', kernel.vmlinuz);
      emit(initramfsName(spec), initrd, holdsPrivateKey ? 0o600 : 0o644);
    }
    artifacts.push(
      ...(await writeMediaArtifacts({
        spec,
        buildId,
        epoch,
        tree,
        vmlinuz: kernel.vmlinuz,
        initramfs: initrd,
        initramfsName: initramfsName(spec),
        debs,
        outDir,
        cache,
        holdsPrivateKey,
        progress: (text) => events.progress?.('write', text),
      })),
    );
    if (spec.outputs.includes('oci')) {
      events.progress?.('write', 'container image');
      emit(ociFileName(spec), ociOutput(spec, tree, epoch, buildId));
    }
    const manifest: Manifest = {
      name: spec.name,
      version: spec.version,
      buildId,
      sourceDateEpoch: epoch,
      kernel: {
        version: kernel.version,
        source:
          spec.kernel.kind === 'image'
            ? `input:${spec.kernel.imageRef}`
            : `deb:${pkgs.kernel!.name}=${pkgs.kernel!.version}`,
        modules: kernel.order,
        builtin: kernel.builtin,
      },
      packages: pkgs.packages.map((p) => ({
        name: p.name,
        version: p.version,
        sha256: p.sha256,
        root: p.root,
      })),
      artifacts: artifacts.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
      files: manifestFiles(tree),
    };
    emit('manifest.json', Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
    const rec: BuildRecord = { key: finalKey, buildId, artifacts, kernelVersion: kernel.version, warnings };
    writeFileAtomic(recordPath, `${JSON.stringify(rec, null, 2)}\n`);
    return {
      value: artifacts,
      cached: false,
      detail: `${tree.size} entries, ${(initrd.length / 1e6).toFixed(2)} MB initramfs`,
    };
  });

  return {
    buildId,
    artifacts: result,
    noop: false,
    ms: performance.now() - t0,
    stages,
    kernelVersion: kernel.version,
    lockChanged: pkgs.lockChanged,
  };
}
