/**
 * Shared-library closure: copies into the image, from the staged Debian packages,
 * everything the dynamic linker will open for the ELF objects already there: the
 * program interpreter (PT_INTERP) and every DT_NEEDED library, transitively.
 *
 * The lookup imitates glibc's ld.so (ld.so(8); elf/dl-load.c `_dl_map_object`):
 *   1. unless the requesting object has DT_RUNPATH: the DT_RPATH of the requester,
 *      then of the object that loaded it, and on up to the executable (an object
 *      that has DT_RUNPATH has no effective DT_RPATH, glibc get-dynamic-info.h);
 *   2. the DT_RUNPATH of the requester only;
 *   3. the default directories (no ld.so.cache and no LD_LIBRARY_PATH: both exist
 *      only at run time).
 * `$ORIGIN` is the directory of the path an object was found under, unresolved,
 * as glibc does. A candidate of another ELF class, byte order or machine is skipped.
 * Each executable's dependency graph is walked the way ld.so loads it (breadth
 * first, a name already loaded or matching a loaded SONAME is not searched again),
 * because the inherited DT_RPATH depends on who loaded whom.
 *
 * Lookups go through an overlay of the image over the staging tree: that overlay is
 * exactly what the guest will see once the entries found through staging are
 * copied, so an image directory can shadow a staging symlink (or the reverse) and
 * the search simply moves on, as ld.so would. Nothing here reads the host.
 */

import { KjxError, type WarnFn } from '../util/errors.js';
import { type ElfInfo, EM, isElf, parseElf } from './elf.js';
import {
  addEntry,
  type EntrySource,
  type FileEntry,
  fillParents,
  type HardlinkEntry,
  parentOf,
  resolveInTree,
  type SymlinkEntry,
  sortedEntries,
  type Tree,
} from './tree.js';

/** Where directories made up by this pass (no package ships them) say they come from. */
const GENERATED: EntrySource = { kind: 'generated', by: 'lib-closure' };

/** The fields that decide the Debian multiarch directory. */
export type ElfAbi = Pick<ElfInfo, 'class' | 'endian' | 'machine' | 'flags'>;

/**
 * Debian's multiarch triplet for an object (lib/<triplet> holds its libraries), or
 * undefined for a machine kjx does not know.
 */
export function multiarchTriplet(abi: ElfAbi): string | undefined {
  switch (abi.machine) {
    case EM.X86_64:
      return abi.class === 64 ? 'x86_64-linux-gnu' : 'x86_64-linux-gnux32';
    case EM.I386:
      return 'i386-linux-gnu';
    case EM.AARCH64:
      return abi.endian === 'little' ? 'aarch64-linux-gnu' : undefined;
    case EM.ARM:
      // EF_ARM_ABI_FLOAT_HARD tells armhf from armel.
      return abi.flags & 0x400 ? 'arm-linux-gnueabihf' : 'arm-linux-gnueabi';
    case EM.RISCV:
      return abi.class === 64 ? 'riscv64-linux-gnu' : undefined;
    case EM.PPC64:
      return abi.endian === 'little' ? 'powerpc64le-linux-gnu' : undefined;
    case EM.S390:
      return abi.class === 64 ? 's390x-linux-gnu' : undefined;
    default:
      return undefined;
  }
}

/**
 * The directories searched after DT_RPATH/DT_RUNPATH, for a requester of this ABI:
 * /lib/<triplet>, /usr/lib/<triplet>, /lib64, /lib, /usr/lib.
 */
export function defaultLibraryDirs(abi: ElfAbi): string[] {
  const t = multiarchTriplet(abi);
  return [...(t ? [`/lib/${t}`, `/usr/lib/${t}`] : []), '/lib64', '/lib', '/usr/lib'];
}

export interface LibraryClosureOptions {
  /** Receives recoverable oddities (unreadable ELF files, RPATH entries we cannot expand). */
  warn?: WarnFn;
  /**
   * The default search directories: a fixed list, or a function of the requesting
   * object. Defaults to `defaultLibraryDirs`.
   */
  defaultDirs?: readonly string[] | ((requester: ElfInfo) => readonly string[]);
}

/** One object in a dependency graph, as ld.so would have it mapped. */
interface Loaded {
  /** The path it was found under; `$ORIGIN` is its directory. */
  path: string;
  /** Its path after following symlinks: its identity. */
  realPath: string;
  info: ElfInfo;
  /** The object whose DT_NEEDED brought it in (glibc's l_loader). */
  loader: Loaded | undefined;
}

/** A usable ELF object found in the overlay (and by then copied into the image). */
interface Found {
  path: string;
  realPath: string;
  info: ElfInfo;
}

interface Missing {
  requester: string;
  name: string;
  searched: string[];
  root: string;
  alternative?: string;
}

interface Pass {
  image: Tree;
  view: Tree;
  warn: WarnFn;
  defaultDirs: (requester: ElfInfo) => readonly string[];
  parsed: WeakMap<Buffer, ElfInfo | null>;
  warned: Set<string>;
  missing: Map<string, Missing>;
}

/**
 * Add to `image` the program interpreters and shared libraries its ELF files need,
 * found in `staging` (the merged files of every downloaded package) or in the image
 * itself. Each library arrives with every symlink on the way to it (e.g.
 * /lib64 -> usr/lib64, libgmp.so.10 -> libgmp.so.10.4.1) and its parent directories,
 * all keeping the staged metadata. `image` is changed in place; `staging` is not.
 *
 * @returns every path added, sorted.
 * @throws KjxError LIB_MISSING naming each object and the library it needs that no
 *   staged package ships (one error; `details` lists them all when there are several).
 *   On that error the image may already hold some of the libraries that were found.
 */
export function addLibraryClosure(
  image: Tree,
  staging: Tree,
  opts: LibraryClosureOptions = {},
): { added: string[] } {
  const before = new Set(image.keys());
  const dirs = opts.defaultDirs ?? defaultLibraryDirs;
  const view = new Map(staging);
  for (const [p, e] of image) view.set(p, e);
  // Package trees may lack entries for some directories; resolveInTree needs them.
  // The view is only looked in, never written: packages may disagree in it.
  fillParents(view, GENERATED);
  const pass: Pass = {
    image,
    view,
    warn: opts.warn ?? (() => {}),
    defaultDirs: typeof dirs === 'function' ? dirs : () => dirs,
    parsed: new WeakMap(),
    warned: new Set(),
    missing: new Map(),
  };

  const roots: { path: string; info: ElfInfo }[] = [];
  for (const e of sortedEntries(image)) {
    if (e.type !== 'file') continue;
    const info = elfInfo(pass, e);
    if (info && (info.interp !== undefined || info.needed.length > 0)) roots.push({ path: e.path, info });
  }
  // Executables first: a library they load gets its DT_RPATH inherited from them, so
  // it must not be judged on its own first (it might not find its siblings alone).
  roots.sort((a, b) => Number(a.info.interp === undefined) - Number(b.info.interp === undefined));

  const reached = new Set<string>();
  for (const r of roots) {
    if (r.info.interp === undefined && reached.has(r.path)) continue;
    loadGraph(pass, r.path, r.info, reached);
  }

  if (pass.missing.size > 0) throw missingError([...pass.missing.values()]);
  return { added: [...image.keys()].filter((p) => !before.has(p)).sort() };
}

/** Walk one root's dependencies breadth first, as ld.so maps them. */
function loadGraph(pass: Pass, rootPath: string, rootInfo: ElfInfo, reached: Set<string>): void {
  const root: Loaded = { path: rootPath, realPath: rootPath, info: rootInfo, loader: undefined };
  const byReal = new Map<string, Loaded>([[rootPath, root]]);
  const byName = new Map<string, Loaded>();
  if (rootInfo.soname !== undefined) byName.set(rootInfo.soname, root);
  const queue = [root];

  const enqueue = (f: Found, loader: Loaded | undefined): Loaded => {
    let o = byReal.get(f.realPath);
    if (!o) {
      o = { path: f.path, realPath: f.realPath, info: f.info, loader };
      byReal.set(f.realPath, o);
      queue.push(o);
    }
    if (f.info.soname !== undefined && !byName.has(f.info.soname)) byName.set(f.info.soname, o);
    return o;
  };

  for (let i = 0; i < queue.length; i++) {
    const obj = queue[i]!;
    reached.add(obj.realPath);
    const interp = obj.info.interp;
    if (interp !== undefined) {
      if (!interp.startsWith('/')) {
        warnOnce(
          pass,
          'ELF_INTERP_RELATIVE',
          `${obj.realPath}: PT_INTERP "${interp}" is relative; not resolved`,
        );
      } else {
        const path = cleanPath(interp);
        const f = findCandidate(pass, path, obj.info);
        // ld.so itself has no loader: nothing it needs inherits anyone's DT_RPATH.
        if (f) enqueue(f, undefined);
        else addMissing(pass, obj, interp, [path], rootPath, mergedUsrAlternative(pass, path, obj.info));
      }
    }
    for (const name of obj.info.needed) {
      if (byName.has(name)) continue;
      const f = findNeeded(pass, obj, name, rootPath);
      if (f) byName.set(name, enqueue(f, obj));
    }
  }
}

/** Search for one DT_NEEDED name of `obj`; records it as missing if not found. */
function findNeeded(pass: Pass, obj: Loaded, name: string, root: string): Found | undefined {
  if (name.includes('/')) {
    // ld.so opens such a name as a path, relative ones against the process's cwd.
    if (!name.startsWith('/')) {
      warnOnce(
        pass,
        'LIB_NEEDED_RELATIVE',
        `${obj.realPath}: DT_NEEDED "${name}" is a relative path; not resolved`,
      );
      return undefined;
    }
    const path = cleanPath(name);
    const f = findCandidate(pass, path, obj.info);
    if (!f) addMissing(pass, obj, name, [path], root);
    return f;
  }
  const searched = searchDirs(pass, obj);
  for (const dir of searched) {
    const f = findCandidate(pass, dir === '/' ? `/${name}` : `${dir}/${name}`, obj.info);
    if (f) return f;
  }
  addMissing(pass, obj, name, searched, root);
  return undefined;
}

/** The ordered, de-duplicated directories ld.so searches for a name `obj` needs. */
function searchDirs(pass: Pass, obj: Loaded): string[] {
  const out: string[] = [];
  if (obj.info.runpath === undefined) {
    for (let l: Loaded | undefined = obj; l; l = l.loader) {
      if (l.info.runpath === undefined && l.info.rpath !== undefined) {
        out.push(...expandPathList(pass, l, l.info.rpath, 'DT_RPATH'));
      }
    }
  } else {
    out.push(...expandPathList(pass, obj, obj.info.runpath, 'DT_RUNPATH'));
  }
  out.push(...pass.defaultDirs(obj.info).map(cleanPath));
  return [...new Set(out)];
}

const ORIGIN = /\$(?:ORIGIN(?![A-Za-z0-9_])|\{ORIGIN\})/g;

/** Split a DT_RPATH/DT_RUNPATH value and expand `$ORIGIN` against `obj`'s directory. */
function expandPathList(pass: Pass, obj: Loaded, list: string, tag: string): string[] {
  const origin = parentOf(obj.path);
  const out: string[] = [];
  for (const raw of list.split(':')) {
    if (raw === '') continue;
    const dir = raw.replace(ORIGIN, origin);
    if (dir.includes('$')) {
      // $LIB and $PLATFORM depend on the run-time CPU and glibc build; guessing could copy the wrong files.
      warnOnce(
        pass,
        'LIB_RPATH_TOKEN',
        `${obj.realPath}: ${tag} entry "${raw}" uses a token kjx does not expand; skipped`,
      );
      continue;
    }
    if (!dir.startsWith('/')) {
      warnOnce(
        pass,
        'LIB_RPATH_RELATIVE',
        `${obj.realPath}: ${tag} entry "${raw}" is relative to the cwd; skipped`,
      );
      continue;
    }
    out.push(cleanPath(dir));
  }
  return out;
}

/**
 * Look `path` up in the overlay. A hit that is an ELF object of the requester's
 * class, byte order and machine is copied into the image (if it is not there yet)
 * and returned; anything else means "keep searching".
 */
function findCandidate(pass: Pass, path: string, want: ElfInfo): Found | undefined {
  const links: SymlinkEntry[] = [];
  const r = resolveInTree(pass.view, path, 40, (l) => links.push(l));
  if (!r) return undefined;
  let entry = r.entry;
  let hardlink: HardlinkEntry | undefined;
  if (entry.type === 'hardlink') {
    hardlink = entry;
    const target = pass.view.get(cleanPath(entry.target));
    if (!target) return undefined;
    entry = target;
  }
  if (entry.type !== 'file') return undefined;
  const info = elfInfo(pass, entry);
  if (!info || info.class !== want.class || info.endian !== want.endian || info.machine !== want.machine) {
    return undefined;
  }
  copyIntoImage(pass, [...links, ...(hardlink ? [hardlink] : []), entry]);
  return { path, realPath: entry.path, info };
}

/**
 * Copy entries, with their missing ancestors, from the overlay into the image. The
 * overlay already holds the image's entries, so whatever is not in the image came
 * from staging (or was implied by it) and cannot conflict.
 */
function copyIntoImage(pass: Pass, entries: (SymlinkEntry | HardlinkEntry | FileEntry)[]): void {
  const paths = new Set<string>();
  for (const e of entries) {
    // An entry already in the image brings no parents: those are the image's business.
    if (pass.image.has(e.path)) continue;
    for (let p = e.path; !paths.has(p); p = parentOf(p)) {
      paths.add(p);
      if (p === '/') break;
    }
  }
  // Parents before children, like every writer expects.
  for (const p of [...paths].sort()) {
    if (pass.image.has(p)) continue;
    const e = pass.view.get(p);
    // Every ancestor of a resolved path is an entry of the overlay (resolveInTree walked it).
    if (!e) throw new KjxError('INTERNAL', `lib-closure: ${p} vanished from the staging overlay`);
    addEntry(pass.image, { ...e });
  }
}

/** Parse (once per content) if it is ELF; an unreadable one is a warning, not a failure. */
function elfInfo(pass: Pass, e: FileEntry): ElfInfo | undefined {
  const memo = pass.parsed.get(e.data);
  if (memo !== undefined) return memo ?? undefined;
  let info: ElfInfo | null = null;
  if (isElf(e.data)) {
    try {
      info = parseElf(e.data, e.path);
    } catch (err) {
      if (!(err instanceof KjxError)) throw err;
      // Packages ship ELF-looking data (test corpora, firmware); one bad file must not stop a build.
      warnOnce(pass, err.code, `${err.message}; its libraries are not resolved`);
    }
  }
  pass.parsed.set(e.data, info);
  return info ?? undefined;
}

function warnOnce(pass: Pass, code: string, message: string): void {
  const key = `${code}\0${message}`;
  if (pass.warned.has(key)) return;
  pass.warned.add(key);
  pass.warn({ code, message });
}

function addMissing(
  pass: Pass,
  obj: Loaded,
  name: string,
  searched: string[],
  root: string,
  alternative?: string,
): void {
  const key = `${obj.realPath}\0${name}`;
  if (pass.missing.has(key)) return;
  pass.missing.set(key, {
    requester: obj.realPath,
    name,
    searched,
    root,
    ...(alternative ? { alternative } : {}),
  });
}

/**
 * On merged-/usr Debian (trixie on) packages ship /usr/lib64/ld-linux-x86-64.so.2 and
 * base-files ships the /lib64 -> usr/lib64 link; without base-files the interpreter
 * is "missing" although the file is staged. Name that case in the hint.
 */
function mergedUsrAlternative(pass: Pass, path: string, want: ElfInfo): string | undefined {
  if (path.startsWith('/usr/')) return undefined;
  const alt = `/usr${path}`;
  const r = resolveInTree(pass.view, alt);
  if (r?.entry.type !== 'file') return undefined;
  const info = elfInfo(pass, r.entry);
  return info && info.class === want.class && info.machine === want.machine ? alt : undefined;
}

function describeMissing(m: Missing): string {
  const loadedFor = m.root === m.requester ? '' : `; ${m.requester} is loaded by ${m.root}`;
  return `${m.requester} needs ${m.name}, which is in no staged package (searched: ${m.searched.join(', ')})${loadedFor}`;
}

function missingError(all: Missing[]): KjxError {
  const names = [...new Set(all.map((m) => m.name))];
  const alternatives = all.flatMap((m) => {
    if (!m.alternative) return [];
    const top = m.name.split('/')[1];
    return [
      `${m.alternative} is staged, so the merged-/usr link /${top} -> usr/${top} is missing (Debian's base-files ships it)`,
    ];
  });
  const hint = [
    `add the Debian package${names.length > 1 ? 's' : ''} that ship${names.length > 1 ? '' : 's'} ${names.join(', ')} to \`packages:\` in kjx.yaml`,
    ...alternatives,
  ].join('; ');
  const lines = all.map(describeMissing);
  if (all.length === 1) return new KjxError('LIB_MISSING', lines[0]!, { hint });
  return new KjxError(
    'LIB_MISSING',
    `${all.length} needed libraries are in no staged package: ${names.join(', ')}`,
    {
      hint,
      details: lines,
    },
  );
}

/** Normalize an absolute path; ".." at the root stays at the root, as the kernel does. */
function cleanPath(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return `/${parts.join('/')}`;
}
