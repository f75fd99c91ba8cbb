/**
 * Kernel-module closure: our own depmod(8). Given the files of a kernel package
 * and the modules a spec wants, pick those modules plus everything they need,
 * in load order, and write the index files busybox modprobe reads.
 *
 * Inputs come from the modules themselves (each `.ko`'s `.modinfo`: `depends=`,
 * `softdep=`, `alias=`, see modinfo.ts) and from the kernel build's own lists
 * under /lib/modules/<version>/: `modules.builtin` (one `kernel/.../x.ko` per
 * line for every module compiled into the kernel image), `modules.order` and
 * `modules.builtin.modinfo`. Outputs follow modules.dep(5):
 *
 *   modules.dep      `kernel/a.ko: kernel/b.ko kernel/c.ko` — every transitive
 *                    dependency, paths relative to the version directory, ordered
 *                    so that modprobe loads them right to left (the last one
 *                    first), as kmod's depmod sorts them (tools/depmod.c,
 *                    depmod_calculate_dependencies: users before what they use).
 *   modules.alias    `alias <fnmatch pattern> <module name>`
 *   modules.softdep  `softdep <module name> pre: x post: y`
 *
 * Module names compare with '-' and '_' as equal (the kernel turns '-' in a file
 * name into '_' for KBUILD_MODNAME). Compressed modules (.ko.xz/.ko.zst/.ko.gz)
 * are written out decompressed as `.ko`, because busybox modprobe loads modules
 * with init_module(2) on the raw bytes and cannot decompress them.
 *
 * Pure apart from the decompression adapter: a Tree in, a Tree out.
 */
import { posix } from 'node:path';
import { KjxError, type WarnFn } from '../util/errors.js';
import {
  type ModInfo,
  type ModuleCompression,
  moduleCompression,
  parseModinfo,
  parseModinfoRecords,
  parseSoftdep,
} from './modinfo.js';
import { decompressModule, type ModuleDecompressor } from './module-decompress.js';
import {
  type EntrySource,
  type FileEntry,
  mk,
  newTree,
  resolveInTree,
  type Tree,
  type TreeEntry,
} from './tree.js';

/** One module the closure chose. */
export interface ChosenModule {
  /** Module name with '_' (e.g. `virtio_rng` for `virtio-rng.ko`). */
  name: string;
  /** Absolute path in the output tree, always a plain `.ko`. */
  path: string;
  /** Absolute path in the kernel tree it came from (differs when it was compressed). */
  from: string;
  /** How the source file was compressed, if it was. */
  compression: ModuleCompression | undefined;
  /** Direct hard dependencies that are loadable modules (built-in ones dropped), sorted. */
  depends: string[];
  /** Modules pulled in by `softdep=... pre:` (loaded before this one), sorted. */
  softdepPre: string[];
  info: ModInfo;
}

export interface ModuleClosure {
  /** The chosen `.ko` files plus modules.dep, modules.alias, modules.softdep, modules.order, modules.builtin. */
  tree: Tree;
  /** Module names in load order: every module after all of its dependencies. */
  order: string[];
  /** Wanted modules that are compiled into the kernel and need no file (normalized names). */
  builtin: string[];
  /** The chosen modules, in load order. */
  modules: ChosenModule[];
  /** `optional` wanted names the kernel has neither as a module nor built in, in the order asked. */
  missing: string[];
}

export interface ModuleClosureOptions {
  /** Decompresses `.ko.xz`/`.ko.zst`/`.ko.gz`; defaults to module-decompress.ts. */
  decompress?: ModuleDecompressor;
  /** Follow `softdep=` `pre:` modules too (default true): e.g. crc32c for ext4/btrfs. */
  softdeps?: boolean;
  /** Recoverable oddities: a softdep that is not in the package, an unreadable unrelated module. */
  warn?: WarnFn;
  /** Wanted names that are skipped, not an error, when the kernel has no such module. */
  optional?: string[];
}

/** `virtio-rng` and `virtio_rng` are the same module. */
export function normalizeModuleName(name: string): string {
  return name.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

const MODULE_FILE = /\.ko(\.(xz|zst|gz))?$/;
const GENERATED: EntrySource = { kind: 'generated', by: 'depmod' };

interface Candidate {
  name: string;
  /** Absolute path in the kernel tree. */
  path: string;
  /** Path relative to the version directory, with the `.ko` ending (decompressed). */
  rel: string;
  entry: TreeEntry;
}

interface Loaded {
  cand: Candidate;
  data: Buffer;
  compression: ModuleCompression | undefined;
  info: ModInfo;
}

type Lookup =
  | { kind: 'builtin'; name: string }
  | { kind: 'modules'; modules: Candidate[]; builtin: string[] }
  | { kind: 'missing' };

function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Compute the closure of `wanted` kernel modules over the kernel package's tree.
 * `wanted` may name modules by file name (`virtio-rng`), module name (`virtio_rng`)
 * or alias (`crc32c`). Throws MODULE_MISSING for a name that is neither a module,
 * a built-in nor an alias (with a did-you-mean hint), MODULE_INVALID for an
 * unreadable module or a dependency cycle.
 */
export function moduleClosure(
  kernelTree: Tree,
  kernelVersion: string,
  wanted: string[],
  options: ModuleClosureOptions = {},
): ModuleClosure {
  const decompress = options.decompress ?? decompressModule;
  const followSoftdeps = options.softdeps ?? true;
  const warn = options.warn ?? (() => {});

  const moddir = findModuleDir(kernelTree, kernelVersion);
  const what = describeKernel(kernelTree, moddir, kernelVersion);

  const modules = indexModules(kernelTree, moddir);
  const builtinFile = fileAt(kernelTree, `${moddir}/modules.builtin`);
  const builtins = new Set<string>();
  if (builtinFile) {
    for (const line of builtinFile.data.toString('utf8').split('\n')) {
      const rel = line.trim();
      if (rel !== '') builtins.add(normalizeModuleName(posix.basename(rel)));
    }
  }

  const loaded = new Map<string, Loaded>();
  const load = (cand: Candidate): Loaded => {
    let l = loaded.get(cand.name);
    if (!l) {
      const raw = fileData(kernelTree, cand.entry, cand.path);
      const compression = moduleCompression(raw);
      const data = compression ? decompress(raw, cand.path) : raw;
      l = { cand, data, compression, info: parseModinfo(data, cand.path) };
      loaded.set(cand.name, l);
    }
    return l;
  };

  // Aliases are only needed when a name is not a module's own; reading every
  // module (and decompressing it) is the expensive part, so do it at most once.
  let aliasIndex: Array<{ pattern: RegExp; module: string; builtin: boolean }> | undefined;
  const aliases = () => {
    if (aliasIndex) return aliasIndex;
    aliasIndex = [];
    for (const cand of [...modules.values()].sort((a, b) => byteCompare(a.name, b.name))) {
      let info: ModInfo;
      try {
        info = load(cand).info;
      } catch (e) {
        if (!(e instanceof KjxError)) throw e;
        warn({ code: 'MODULE_INVALID', message: `${e.message} (skipped while looking up aliases)` });
        continue;
      }
      for (const a of info.alias)
        aliasIndex.push({ pattern: globToRegExp(a), module: cand.name, builtin: false });
    }
    const bm = fileAt(kernelTree, `${moddir}/modules.builtin.modinfo`);
    if (bm) {
      // Records are `<module>.<key>=<value>` for every built-in module.
      for (const { key, value } of parseModinfoRecords(bm.data, bm.path)) {
        const dot = key.lastIndexOf('.');
        if (dot > 0 && key.slice(dot + 1) === 'alias') {
          aliasIndex.push({
            pattern: globToRegExp(value),
            module: normalizeModuleName(key.slice(0, dot)),
            builtin: true,
          });
        }
      }
    }
    return aliasIndex;
  };

  const lookup = (name: string, withAliases: boolean): Lookup => {
    const n = normalizeModuleName(name);
    if (builtins.has(n)) return { kind: 'builtin', name: n };
    const cand = modules.get(n);
    if (cand) return { kind: 'modules', modules: [cand], builtin: [] };
    if (!withAliases) return { kind: 'missing' };
    const mods = new Set<string>();
    const builtin = new Set<string>();
    for (const a of aliases()) {
      if (!a.pattern.test(name)) continue;
      if (a.builtin || builtins.has(a.module)) builtin.add(a.module);
      else mods.add(a.module);
    }
    // One built-in provider satisfies the alias (modprobe would find it loaded).
    if (builtin.size > 0) return { kind: 'builtin', name: [...builtin].sort(byteCompare)[0]! };
    if (mods.size === 0) return { kind: 'missing' };
    return { kind: 'modules', modules: [...mods].sort(byteCompare).map((m) => modules.get(m)!), builtin: [] };
  };

  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const chosen: ChosenModule[] = [];
  const visit = (cand: Candidate): void => {
    const s = state.get(cand.name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(cand.name)), cand.name].join(' -> ');
      throw new KjxError('MODULE_INVALID', `${cand.path}: dependency cycle ${cycle}`, {
        hint: 'modules of one kernel build cannot depend on each other in a cycle; the package is damaged',
      });
    }
    state.set(cand.name, 'visiting');
    stack.push(cand.name);
    const l = load(cand);

    const softdepPre: string[] = [];
    if (followSoftdeps) {
      const pre = new Set(l.info.softdep.flatMap((v) => parseSoftdep(v).pre));
      for (const p of [...pre].sort(byteCompare)) {
        const r = lookup(p, true);
        if (r.kind === 'missing') {
          warn({
            code: 'MODULE_SOFTDEP_MISSING',
            message: `${cand.name}: soft dependency "${p}" is neither a module nor built into ${what}; skipped`,
          });
          continue;
        }
        if (r.kind === 'builtin') continue;
        for (const m of r.modules) {
          // A soft dependency is a preference, not a requirement: never let one close a cycle.
          if (state.get(m.name) === 'visiting') continue;
          visit(m);
          softdepPre.push(m.name);
        }
      }
    }

    const depends: string[] = [];
    for (const d of [...new Set(l.info.depends.map(normalizeModuleName))].sort(byteCompare)) {
      // depends= holds real module names (modpost writes them), so no alias lookup.
      const r = lookup(d, false);
      if (r.kind === 'builtin') continue;
      if (r.kind === 'missing') {
        throw new KjxError(
          'MODULE_MISSING',
          `kernel module "${d}" (needed by ${cand.name}) is not in ${what}`,
          {
            hint: `${cand.path} and the package's modules do not match; the kernel package may be incomplete`,
          },
        );
      }
      visit(r.modules[0]!);
      depends.push(d);
    }

    stack.pop();
    state.set(cand.name, 'done');
    chosen.push({
      name: cand.name,
      path: `${moddir}/${cand.rel}`,
      from: cand.path,
      compression: l.compression,
      depends,
      softdepPre: [...new Set(softdepPre)].sort(byteCompare),
      info: l.info,
    });
  };

  const builtin: string[] = [];
  const missing: string[] = [];
  for (const w of wanted) {
    const r = lookup(w, true);
    if (r.kind === 'builtin') {
      if (!builtin.includes(r.name)) builtin.push(r.name);
      continue;
    }
    if (r.kind === 'missing' && options.optional?.includes(w)) {
      if (!missing.includes(w)) missing.push(w);
      continue;
    }
    if (r.kind === 'missing') {
      const suggestion = didYouMean(normalizeModuleName(w), [...modules.keys(), ...builtins]);
      throw new KjxError('MODULE_MISSING', `kernel module "${w}" is not in ${what}`, {
        hint: suggestion
          ? `did you mean ${suggestion.map((s) => `"${s}"`).join(' or ')}?`
          : `the package's modules are listed in ${moddir}/modules.order and its built-in ones in ${moddir}/modules.builtin`,
      });
    }
    for (const m of r.modules) visit(m);
  }

  return {
    tree: buildOutput(kernelTree, moddir, chosen, loaded),
    order: chosen.map((c) => c.name),
    builtin,
    modules: chosen,
    missing,
  };
}

/** The version directory: /lib/modules/<ver> (Debian 12), or /usr/lib/modules/<ver> (merged /usr packages). */
function findModuleDir(tree: Tree, version: string): string {
  if (version === '' || version.includes('/')) {
    throw new KjxError('MODULE_MISSING', `invalid kernel version "${version}"`);
  }
  for (const dir of [`/lib/modules/${version}`, `/usr/lib/modules/${version}`]) {
    const r = resolveInTree(tree, dir);
    if (r?.entry.type === 'dir') return r.path;
    // Package trees may list files without their directories.
    for (const p of tree.keys()) if (p.startsWith(`${dir}/`)) return dir;
  }
  const versions = new Set<string>();
  for (const p of tree.keys()) {
    const m = /^(?:\/usr)?\/lib\/modules\/([^/]+)\//.exec(p);
    if (m) versions.add(m[1]!);
  }
  throw new KjxError('MODULE_MISSING', `the kernel tree has no /lib/modules/${version}`, {
    hint:
      versions.size > 0
        ? `it has modules for ${[...versions].sort(byteCompare).join(', ')}; use that kernel version`
        : 'is the kernel package (linux-image-*) in the plan?',
  });
}

/** "linux-image-6.1.0-56-cloud-amd64 6.1.0-56-cloud-amd64", from the modules' package source. */
function describeKernel(tree: Tree, moddir: string, version: string): string {
  for (const [p, e] of tree) {
    if (p.startsWith(`${moddir}/`) && e.source.kind === 'deb') return `${e.source.package} ${version}`;
  }
  return `kernel ${version}`;
}

/**
 * Every module file under the version directory, by normalized name. If two
 * files share a name, `updates/` wins (depmod's default search order), then the
 * byte-wise first path, so the choice never depends on Map order.
 */
function indexModules(tree: Tree, moddir: string): Map<string, Candidate> {
  const out = new Map<string, Candidate>();
  const prefix = `${moddir}/`;
  for (const [path, entry] of tree) {
    if (!path.startsWith(prefix) || !MODULE_FILE.test(path) || entry.type === 'dir') continue;
    const relRaw = path.slice(prefix.length);
    const cand: Candidate = {
      name: normalizeModuleName(posix.basename(path)),
      path,
      rel: relRaw.replace(/\.(xz|zst|gz)$/, ''),
      entry,
    };
    const old = out.get(cand.name);
    if (!old || rank(cand) < rank(old) || (rank(cand) === rank(old) && cand.path < old.path))
      out.set(cand.name, cand);
  }
  return out;
}

function rank(c: Candidate): number {
  return c.rel.startsWith('updates/') ? 0 : 1;
}

function fileAt(tree: Tree, path: string): FileEntry | undefined {
  // Direct hit first: a package's file list need not include its directories,
  // and resolveInTree walks every component.
  const e = tree.get(path) ?? resolveInTree(tree, path)?.entry;
  return e?.type === 'file' ? e : undefined;
}

function fileData(tree: Tree, entry: TreeEntry, path: string): Buffer {
  let e: TreeEntry | undefined = entry;
  if (e.type === 'symlink' || e.type === 'hardlink') {
    e = e.type === 'symlink' ? resolveInTree(tree, path)?.entry : tree.get(e.target);
  }
  if (e?.type !== 'file') throw new KjxError('MODULE_INVALID', `${path}: not a regular file`);
  return e.data;
}

/** fnmatch(3) without flags, as kmod matches module aliases. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  try {
    return new RegExp(`^${re}$`, 's');
  } catch {
    // A bracket expression JS rejects: match the text literally rather than fail the build.
    return new RegExp(`^${glob.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 's');
  }
}

/** Levenshtein distance, for did-you-mean hints. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest names (up to three, ties sorted), if any is close enough to be a typo. */
function didYouMean(name: string, names: string[]): string[] | undefined {
  const limit = Math.max(1, Math.floor(name.length / 4));
  let best = Number.POSITIVE_INFINITY;
  let found: string[] = [];
  for (const n of new Set(names)) {
    const d = editDistance(name, n);
    if (d < best) {
      best = d;
      found = [n];
    } else if (d === best) found.push(n);
  }
  return best <= limit ? found.sort(byteCompare).slice(0, 3) : undefined;
}

function buildOutput(
  kernelTree: Tree,
  moddir: string,
  chosen: ChosenModule[],
  loaded: Map<string, Loaded>,
): Tree {
  const tree = newTree();
  const rel = (p: string) => p.slice(moddir.length + 1);
  const byName = new Map(chosen.map((c) => [c.name, c]));
  const loadIndex = new Map(chosen.map((c, i) => [c.name, i]));

  for (const c of chosen) {
    const l = loaded.get(c.name)!;
    const src = l.cand.entry;
    tree.set(c.path, { ...mk.file(c.path, l.data, src.source, 0o644), mtime: src.mtime });
  }

  // modules.dep: each module's transitive hard dependencies, dependents before
  // what they depend on (reverse load order), so the last is loaded first.
  const depLines = chosen.map((c) => {
    const all = new Set<string>();
    const walk = (n: string) => {
      for (const d of byName.get(n)!.depends) {
        if (all.has(d)) continue;
        all.add(d);
        walk(d);
      }
    };
    walk(c.name);
    const deps = [...all]
      .sort((a, b) => loadIndex.get(b)! - loadIndex.get(a)!)
      .map((d) => rel(byName.get(d)!.path));
    return `${rel(c.path)}:${deps.map((d) => ` ${d}`).join('')}\n`;
  });
  addGenerated(tree, `${moddir}/modules.dep`, depLines.sort(byteCompare).join(''));

  const aliasLines: string[] = [];
  for (const c of chosen) for (const a of new Set(c.info.alias)) aliasLines.push(`alias ${a} ${c.name}\n`);
  addGenerated(
    tree,
    `${moddir}/modules.alias`,
    `# Aliases extracted from modules themselves.\n${aliasLines.sort(byteCompare).join('')}`,
  );

  const softLines: string[] = [];
  for (const c of chosen) for (const s of new Set(c.info.softdep)) softLines.push(`softdep ${c.name} ${s}\n`);
  if (softLines.length > 0) {
    addGenerated(
      tree,
      `${moddir}/modules.softdep`,
      `# Soft dependencies extracted from modules themselves.\n${softLines.sort(byteCompare).join('')}`,
    );
  }

  // modules.order: the kernel's link order restricted to our modules; any chosen
  // module it does not list (out-of-tree, updates/) follows in load order.
  const chosenRel = new Set(chosen.map((c) => rel(c.path)));
  const order: string[] = [];
  const orderFile = fileAt(kernelTree, `${moddir}/modules.order`);
  if (orderFile) {
    for (const line of orderFile.data.toString('utf8').split('\n')) {
      const r = line.trim().replace(/\.(xz|zst|gz)$/, '');
      if (chosenRel.has(r) && !order.includes(r)) order.push(r);
    }
  }
  for (const c of chosen) if (!order.includes(rel(c.path))) order.push(rel(c.path));
  addGenerated(tree, `${moddir}/modules.order`, order.map((l) => `${l}\n`).join(''));

  // The built-in lists are copied whole: modprobe consults them to succeed on a
  // built-in name instead of failing with "module not found".
  for (const name of ['modules.builtin', 'modules.builtin.modinfo']) {
    const f = fileAt(kernelTree, `${moddir}/${name}`);
    if (f)
      tree.set(`${moddir}/${name}`, {
        ...mk.file(`${moddir}/${name}`, f.data, f.source, 0o644),
        mtime: f.mtime,
      });
  }
  return tree;
}

function addGenerated(tree: Tree, path: string, text: string): void {
  tree.set(path, mk.file(path, text, GENERATED, 0o644));
}
