/**
 * Build a kernel from source, rootless, out of tree:
 *
 *   merge the profile and fragments (config.ts) → `make <all*config>` with them as
 *   KCONFIG_ALLCONFIG → `make olddefconfig` → name what did not survive →
 *   `make -j$(nproc) bzImage modules` → `make modules_install` into a staging
 *   directory → bzImage, vmlinux, .config and lib/modules/<release> into the cache.
 *
 * The object tree of one source lives on in `kernel/work/<source id>` so a changed
 * configuration recompiles only what it touches. The result is cached under
 * `kernel/built/<key>`, keyed by the source, the final .config, the toolchain and
 * the reproducibility settings: an unchanged kernel costs the two config steps.
 *
 * Reproducible: KBUILD_BUILD_TIMESTAMP from the build's SOURCE_DATE_EPOCH, a fixed
 * user, host and build number, source and object paths mapped away from debug
 * info, pahole without its parallel (unordered) BTF encoding, modules unsigned and
 * stripped of debug info. Two directories give the same bytes (`npm run bench kernel`
 * builds the vm profile in two caches and compares them).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { type Cache, cacheTempDir } from '../sources/cache.js';
import type { KernelConfigEntry } from '../spec/kernel-config.js';
import type { BuildKernelSpec } from '../spec/schema.js';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import { hashValue, sha256 } from '../util/hash.js';
import { aptInstallLine, probeTools } from '../util/host-tools.js';
import { lockHolder } from '../util/pid.js';
import {
  type ConfigOption,
  lostOptions,
  lostWarning,
  mergeFragments,
  parseFragment,
  readDotConfig,
  renderFragment,
} from './config.js';
import { kjxProfileText, profileBase } from './profiles.js';
import { type KernelSource, treeStamp } from './source.js';
import { toolchainVersions } from './toolchain.js';

/** Bumped when how kjx builds changes what it builds (flags, steps): older results are not reused. */
export const KERNEL_RECIPE = 1;

export interface KernelBuildRequest {
  source: KernelSource;
  config: KernelConfigEntry[];
  /** SOURCE_DATE_EPOCH of the build: the kernel's build timestamp. */
  epoch: number;
  cache: Cache;
  warn: WarnFn;
  progress(text: string): void;
  /** make's -j (default: the host's CPUs). */
  jobs?: number;
}

export interface BuiltKernel {
  /** `make kernelrelease`: the name of its lib/modules directory and `uname -r`. */
  release: string;
  bzImage: string;
  vmlinux: string;
  /** `<dir>/lib/modules/<release>` as modules_install wrote it. */
  modulesDir: string;
  config: string;
  /** The cache key the result is stored under. */
  key: string;
  /** Taken from the cache (nothing compiled). */
  cached: boolean;
}

interface BuiltRecord {
  release: string;
  files: Record<string, string>;
}

/**
 * What a kernel built from source depends on, cheaply, for the kernel stage's key:
 * the source (package sha256, or a tree's path and stamp), each config entry by
 * content, the toolchain and the recipe. When it matches, the stage's cached
 * result is used and make is not even asked (the no-op rebuild).
 */
export function kernelBuildInput(k: BuildKernelSpec, debSha256: string | undefined): unknown {
  return {
    recipe: KERNEL_RECIPE,
    source:
      k.source.kind === 'debian'
        ? { deb: debSha256 }
        : { tree: k.source.path, stamp: treeStamp(k.source.path) },
    // kjx's own profile files by content: the build id changes with them (the code hash alone would not)
    kjxConfig: sha256(kjxProfileText('kjx')),
    config: k.config.map((e) => {
      if (e.kind === 'profile') return e.name === 'vm' ? { ...e, sha256: sha256(kjxProfileText('vm')) } : e;
      if (e.kind !== 'file') return e;
      try {
        return { file: e.pathRef, sha256: sha256(readFileSync(e.path)) };
      } catch {
        // missing: the build says so, with the entry's place
        return { file: e.pathRef, missing: true };
      }
    }),
    toolchain: toolchainVersions(),
  };
}

/** HOST_TOOL_MISSING with the apt-get line unless every tool of a kernel build is there. */
export function requireKernelTools(): void {
  const missing = probeTools(['kernel']).filter((s) => !s.path);
  if (missing.length === 0) return;
  const names = missing.map((m) => `${m.tool.command} (${m.tool.package})`).join(', ');
  throw new KjxError('HOST_TOOL_MISSING', `building a kernel needs host tools that are missing: ${names}`, {
    hint: `install them with: ${aptInstallLine(missing)}\n(or: kjx doctor --install --for kernel)`,
  });
}

/** The fragments of `config` in merge order, read and checked. */
export function configFragments(
  config: KernelConfigEntry[],
  srcDir: string,
): {
  target: 'allnoconfig' | 'alldefconfig';
  fragments: ConfigOption[][];
} {
  const [first, ...rest] = config;
  if (first?.kind !== 'profile')
    throw new KjxError('INTERNAL', 'kernel.config does not start with a profile');
  const base = profileBase(first.name, srcDir);
  const fragments = [...base.fragments];
  rest.forEach((e, i) => {
    const where = `kernel.config[${i + 1}]`;
    if (e.kind === 'line') fragments.push([{ name: e.name, value: e.value, where }]);
    else if (e.kind === 'file') {
      let text: string;
      try {
        text = readFileSync(e.path, 'utf8');
      } catch {
        throw new KjxError(
          'INPUT_NOT_FOUND',
          `${where}: the fragment ${e.pathRef} does not exist (looked at ${e.path})`,
          {
            hint: 'fragment files are relative to kjx.yaml',
          },
        );
      }
      fragments.push(parseFragment(text, e.pathRef));
    } else throw new KjxError('INTERNAL', `${where}: a profile after the first entry`);
  });
  return { target: base.target, fragments };
}

/** Environment of every make: what makes two builds of the same inputs give the same bytes. */
function buildEnv(epoch: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  // the host's locale and make flags must not change the build
  for (const k of [
    'MAKEFLAGS',
    'MFLAGS',
    'MAKELEVEL',
    'KCFLAGS',
    'KAFLAGS',
    'KCPPFLAGS',
    'ARCH',
    'CROSS_COMPILE',
  ])
    delete env[k];
  return {
    ...env,
    LC_ALL: 'C',
    KBUILD_BUILD_TIMESTAMP: `@${epoch}`,
    KBUILD_BUILD_USER: 'kjx',
    KBUILD_BUILD_HOST: 'kjx',
    KBUILD_BUILD_VERSION: '1',
    SOURCE_DATE_EPOCH: String(epoch),
  };
}

/** make's arguments common to every step. */
function makeArgs(src: string, obj: string): string[] {
  // debug info (BTF is made from it) names the source and object directories: mapped to fixed ones
  const prefixMap = `-fdebug-prefix-map=${src}=/usr/src/linux -fdebug-prefix-map=${obj}=/usr/src/linux-obj`;
  return ['-C', src, `O=${obj}`, 'ARCH=x86_64', `KCFLAGS=${prefixMap}`, `KAFLAGS=${prefixMap}`];
}

/** pahole's flags as the kernel picks them, without -j: parallel encoding orders BTF differently each run. */
function paholeFlags(src: string): string {
  const r = spawnSync('sh', [join(src, 'scripts', 'pahole-flags.sh')], {
    encoding: 'utf8',
    env: { ...process.env, PAHOLE: 'pahole' },
  });
  return (r.stdout ?? '')
    .trim()
    .split(/\s+/)
    .filter((f) => f && f !== '-j')
    .join(' ');
}

export async function buildKernel(req: KernelBuildRequest): Promise<BuiltKernel> {
  requireKernelTools();
  const { source, cache } = req;
  const work = join(cache.root, 'kernel', 'work', source.id);
  mkdirSync(work, { recursive: true });
  const release = lockWork(work);
  try {
    return await buildLocked(req, work);
  } finally {
    release();
  }
}

async function buildLocked(req: KernelBuildRequest, work: string): Promise<BuiltKernel> {
  const { source, cache } = req;
  const obj = join(work, 'obj');
  mkdirSync(obj, { recursive: true });
  const env = buildEnv(req.epoch);
  const common = [...makeArgs(source.dir, obj), `PAHOLE_FLAGS=${paholeFlags(source.dir)}`];
  const log = join(work, 'build.log');

  const { target, fragments } = configFragments(req.config, source.dir);
  const { options, redefined } = mergeFragments(fragments);
  for (const r of redefined)
    req.progress(`${r.name}=${r.to.value} (${r.to.where}) replaces ${r.from.value} (${r.from.where})`);
  const fragmentFile = join(work, 'kjx.fragment');
  writeFileAtomic(fragmentFile, renderFragment(options.values()));
  req.progress(`configuring ${source.what}: ${target} with ${options.size} options, then olddefconfig`);
  await make('configuring the kernel', [...common, `KCONFIG_ALLCONFIG=${fragmentFile}`, target], env, log);
  await make('configuring the kernel', [...common, 'olddefconfig'], env, log);
  const configText = readFileSync(join(obj, '.config'), 'utf8');
  for (const l of lostOptions(options.values(), readDotConfig(configText)))
    req.warn({ code: 'kernel-config-lost', message: lostWarning(l) });

  const key = hashValue({
    recipe: KERNEL_RECIPE,
    source: source.id,
    config: sha256(configText),
    toolchain: toolchainVersions(),
    epoch: req.epoch,
  });
  const out = join(cache.root, 'kernel', 'built', key);
  const hit = readBuilt(out);
  if (hit) return { ...paths(out, hit.release), config: join(out, 'config'), key, cached: true };

  const jobs = req.jobs ?? cpus().length;
  req.progress(`compiling with make -j${jobs} (log: ${log})`);
  await make('building the kernel', [...common, `-j${jobs}`, 'bzImage', 'modules'], env, log, req.progress);
  const releaseName = (
    await make('reading the kernel release', [...common, '-s', 'kernelrelease'], env, log)
  ).trim();

  const tmp = cacheTempDir(cache, 'kernel-built');
  try {
    // DEPMOD=true: kjx writes modules.dep itself (rootfs/module-closure.ts)
    await make(
      'installing the modules',
      [...common, 'modules_install', `INSTALL_MOD_PATH=${tmp}`, 'INSTALL_MOD_STRIP=1', 'DEPMOD=true'],
      env,
      log,
    );
    const modules = join(tmp, 'lib', 'modules', releaseName);
    // links back into the object tree: a moved cache must not point there
    for (const l of ['build', 'source']) rmSync(join(modules, l), { force: true });
    mkdirSync(modules, { recursive: true });
    copyFileSync(join(obj, 'arch', 'x86', 'boot', 'bzImage'), join(tmp, 'bzImage'));
    copyFileSync(join(obj, 'vmlinux'), join(tmp, 'vmlinux'));
    copyFileSync(join(obj, '.config'), join(tmp, 'config'));
    const files: Record<string, string> = {};
    for (const f of ['bzImage', 'vmlinux', 'config']) files[f] = sha256(readFileSync(join(tmp, f)));
    writeFileAtomic(
      join(tmp, 'record.json'),
      `${JSON.stringify({ release: releaseName, files } satisfies BuiltRecord)}\n`,
    );
    mkdirSync(join(cache.root, 'kernel', 'built'), { recursive: true });
    rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { ...paths(out, releaseName), config: join(out, 'config'), key, cached: false };
}

function paths(
  out: string,
  release: string,
): Pick<BuiltKernel, 'release' | 'bzImage' | 'vmlinux' | 'modulesDir'> {
  return {
    release,
    bzImage: join(out, 'bzImage'),
    vmlinux: join(out, 'vmlinux'),
    modulesDir: join(out, 'lib', 'modules', release),
  };
}

/** A cached build whose files still hash to what was recorded. */
function readBuilt(out: string): BuiltRecord | undefined {
  try {
    const rec = JSON.parse(readFileSync(join(out, 'record.json'), 'utf8')) as BuiltRecord;
    for (const [f, sum] of Object.entries(rec.files))
      if (sha256(readFileSync(join(out, f))) !== sum) return undefined;
    return existsSync(join(out, 'lib', 'modules', rec.release)) ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** One build per work directory at a time; a lock left by a process that is gone is taken over. */
function lockWork(work: string): () => void {
  const lock = join(work, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = lockHolder(lock);
      if (pid !== undefined) {
        throw new KjxError('USAGE', `another kjx (pid ${pid}) is building this kernel in ${work}`, {
          hint: 'wait for it to finish, then run again (the result is cached)',
        });
      }
      rmSync(lock, { force: true });
    }
  }
  throw new KjxError('INTERNAL', `could not lock ${lock}`);
}

/** Lines of make's output that are a compile step ("  CC      kernel/fork.o"). */
const STEP = /^ {2}([A-Z][A-Z0-9_ ]{0,9}?) +(\S+)$/;
/** A compiler's or linker's own error line. */
const ERROR_LINE = /(?:^|: )(?:fatal )?error: |^make\[\d+\]: \*\*\* |undefined reference to/;

const running = new Set<ChildProcess>();
let exitHook = false;

/**
 * Run make in its own process group, its output appended to `log`; progress names
 * the steps. A failure is KERNEL_BUILD with the compiler's own error lines and the
 * log's path; the whole group is ended when kjx exits.
 */
function make(
  step: string,
  args: string[],
  env: Record<string, string>,
  log: string,
  progress?: (text: string) => void,
): Promise<string> {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const p of running) if (p.pid) killGroup(p.pid);
    });
  }
  return new Promise((resolve, reject) => {
    const logStream = createWriteStream(log, { flags: 'a' });
    logStream.write(`\n$ make ${args.join(' ')}\n`);
    const child = spawn('make', args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    const errors: string[] = [];
    let steps = 0;
    let last = 0;
    const started = Date.now();
    let pending = { out: '', err: '' };
    const onLine = (line: string, isErr: boolean) => {
      if (ERROR_LINE.test(line) && errors.length < 40) errors.push(line);
      if (isErr || !progress) return;
      const m = STEP.exec(line);
      if (!m) return;
      steps++;
      const now = Date.now();
      if (now - last >= 5000) {
        last = now;
        progress(`${steps} steps, ${Math.round((now - started) / 1000)} s: ${m[1]!.trim()} ${m[2]}`);
      }
    };
    const feed = (which: 'out' | 'err') => (chunk: Buffer) => {
      logStream.write(chunk);
      const text = pending[which] + chunk.toString('utf8');
      const lines = text.split('\n');
      pending = { ...pending, [which]: lines.pop() ?? '' };
      if (which === 'out' && stdout.length < 1 << 20)
        stdout += text.slice(0, text.length - pending.out.length);
      for (const l of lines) onLine(l, which === 'err');
    };
    child.stdout.on('data', feed('out'));
    child.stderr.on('data', feed('err'));
    child.on('error', (e) => {
      running.delete(child);
      logStream.end();
      reject(new KjxError('HOST_TOOL_MISSING', `${step}: could not run make (${e.message})`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      running.delete(child);
      logStream.end();
      for (const which of ['out', 'err'] as const)
        if (pending[which]) onLine(pending[which], which === 'err');
      if (code === 0) return resolve(stdout);
      const said = errors.length > 0 ? `\n${errors.join('\n')}` : '';
      reject(
        new KjxError('KERNEL_BUILD', `${step}: make failed (${signal ?? `exit status ${code}`})${said}`, {
          hint: `the whole output is in ${log}`,
        }),
      );
    });
  });
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
