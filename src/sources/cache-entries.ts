/**
 * What the cache holds, entry by entry, and removing entries (`kjx cache`, `kjx cache
 * clean`).
 *
 * Any entry may go at any time: whoever reads the cache finds a missing entry as it
 * finds a damaged one, absent, and computes it again (cache.ts). So entries are removed
 * whole (a file with its `.sha256` and `.stamp` companions, a snapshot's record with its
 * stream, a kernel build tree) and kinds can go in any combination. Two things are in
 * use while another kjx runs, and stay: a kernel build tree whose lock names a live
 * process, and a temporary whose writer is alive. Nothing the cache does not know is
 * touched: kjx names its entries by hashes (and its temporaries by their pid), and a
 * name that is not one is no entry, so a KJX_CACHE_DIR pointed at a home directory
 * loses neither `~/tmp` nor `~/kernel/work/linux`. No symbolic link is followed: a
 * link is an entry's own file, removed as a link.
 */
import { lstatSync, readdirSync, rmSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { lockHolder, pidAlive, tempOwner } from '../util/pid.js';

export interface CacheKind {
  name: string;
  /** What its entries are, for `kjx cache`. */
  what: string;
  /** Where its entries are, relative to the cache root: `*` is any one name. */
  where: string[];
  /** The names its entries have (the last part of `where`); by default, kjx's hashed names. */
  names?: RegExp;
}

/** What kjx calls cache entries: a hash, perhaps after a word (`bpf-loader-`, `tsc-`), perhaps with a suffix. */
const HASHED = /^(?:[a-z][a-z-]*-)?[0-9a-f]{16,}(?:[.-][A-Za-z0-9.-]*)?$/;
/** An atomic write's temporary (util/atomic.ts), in whatever directory it is written. */
const ATOMIC_TEMP = /^\..+\.tmp-\d+-[0-9a-f]+$/;

export const CACHE_KINDS: readonly CacheKind[] = [
  { name: 'debs', what: 'downloaded Debian packages', where: ['debs/*'] },
  { name: 'blobs', what: 'file contents of cached build stages', where: ['blobs/*/*'] },
  { name: 'stages', what: 'results of build stages', where: ['stages/*'] },
  {
    name: 'kernel',
    what: 'kernel sources, build trees and kernels built from source',
    where: ['kernel/src/*', 'kernel/work/*', 'kernel/built/*'],
  },
  { name: 'kernels', what: 'kernels unpacked for direct boot', where: ['kernels/*'] },
  { name: 'initrds', what: 'initramfs images unpacked for direct boot', where: ['initrds/*'] },
  {
    name: 'kernel-overlays',
    what: 'images joined with the modules of a --kernel',
    where: ['kernel-overlays/*'],
  },
  { name: 'snapshots', what: 'VMs saved at ready, restored by kjx run', where: ['snapshots/*'] },
  { name: 'go-build', what: "Go's build cache of eBPF loaders", where: ['go-build'], names: /^go-build$/ },
  { name: 'specs', what: 'kjx.yaml files as validated', where: ['specs/*'] },
  { name: 'valid', what: 'kjx.lock files checked before', where: ['valid/*/*'] },
  { name: 'accel', what: 'KVM verdicts, QEMU versions and TSC rates', where: ['accel/*'] },
  {
    name: 'records',
    what: "kjx's code hash and the toolchain's versions",
    where: ['code-hash-*.json', 'toolchain.json'],
    names: /^(?:code-hash-[0-9a-f]{16}\.json|toolchain\.json)$/,
  },
  // cacheTempDir's `PREFIX-PID-XXXXXX` (atomic writes' temporaries are taken everywhere)
  { name: 'tmp', what: 'temporary files of builds', where: ['tmp/*'], names: /-\d+-[A-Za-z0-9]{6}$/ },
];

export interface CacheEntry {
  kind: string;
  /** Its files and directories, absolute. */
  paths: string[];
  /** Bytes on disk (allocated blocks), directories' contents included. */
  bytes: number;
  /** Milliseconds since the epoch of its most recent read or write (atime and mtime). */
  lastUsed: number;
  /** Why it must stay now, when it must. */
  inUse?: string;
}

const globRe = (segment: string) =>
  new RegExp(`^${segment.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);

/** The paths a `where` pattern names whose last part is an entry's name: directories are entered, links never. */
function expand(root: string, pattern: string, names: RegExp): string[] {
  let dirs = [root];
  const segments = pattern.split('/');
  for (const [i, segment] of segments.entries()) {
    const last = i === segments.length - 1;
    const re = globRe(segment);
    const next: string[] = [];
    for (const dir of dirs) {
      for (const name of listDir(dir)) {
        if (!re.test(name) || (last && !names.test(name) && !ATOMIC_TEMP.test(name))) continue;
        const path = join(dir, name);
        if (last || lstatOrUndefined(path)?.isDirectory()) next.push(path);
      }
    }
    dirs = next;
  }
  return dirs;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return []; // not there (yet), or not a directory: nothing of this kind
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Bytes and last use of a file or a whole directory tree (links counted, not followed). */
function measure(path: string): { bytes: number; lastUsed: number } {
  const st = lstatOrUndefined(path);
  if (!st) return { bytes: 0, lastUsed: 0 };
  let bytes = st.blocks * 512;
  let lastUsed = Math.max(st.atimeMs, st.mtimeMs);
  if (st.isDirectory()) {
    for (const name of listDir(path)) {
      const m = measure(join(path, name));
      bytes += m.bytes;
      lastUsed = Math.max(lastUsed, m.lastUsed);
    }
  }
  return { bytes, lastUsed };
}

/**
 * A file's entry within its directory: a name and its companions share what precedes
 * the first dot (`KEY.vmlinux`, `KEY.vmlinux.sha256`, `KEY.vmlinux.stamp`); a temporary
 * being written (`.NAME.tmp-PID-HEX`) is an entry of its own.
 */
function groupKey(name: string): string {
  if (tempOwner(name) !== undefined) return `\0${name}`;
  const dot = name.indexOf('.', 1);
  return dot < 0 ? name : name.slice(0, dot);
}

function inUse(kind: string, paths: string[]): string | undefined {
  for (const path of paths) {
    const name = path.slice(path.lastIndexOf('/') + 1);
    const owner = kind === 'tmp' || name.startsWith('.') ? tempOwner(name) : undefined;
    if (owner !== undefined && pidAlive(owner)) return `being written by pid ${owner}`;
    // kernel/build.ts's lockWork
    const holder =
      kind === 'kernel' && path.includes('/kernel/work/') ? lockHolder(join(path, 'lock')) : undefined;
    if (holder !== undefined) return `a kernel build (pid ${holder}) is using it`;
  }
  return undefined;
}

/** The entries of the cache at `root`, kind by kind in CACHE_KINDS' order. */
export function cacheEntries(root: string, kinds: readonly CacheKind[] = CACHE_KINDS): CacheEntry[] {
  const entries: CacheEntry[] = [];
  for (const kind of kinds) {
    const groups = new Map<string, string[]>();
    for (const pattern of kind.where)
      for (const path of expand(root, pattern, kind.names ?? HASHED)) {
        const dir = path.slice(0, path.lastIndexOf('/'));
        const key = `${dir}/${groupKey(path.slice(dir.length + 1))}`;
        groups.set(key, [...(groups.get(key) ?? []), path]);
      }
    for (const paths of groups.values()) {
      let bytes = 0;
      let lastUsed = 0;
      for (const p of paths) {
        const m = measure(p);
        bytes += m.bytes;
        lastUsed = Math.max(lastUsed, m.lastUsed);
      }
      const busy = inUse(kind.name, paths);
      entries.push({ kind: kind.name, paths, bytes, lastUsed, ...(busy ? { inUse: busy } : {}) });
    }
  }
  return entries;
}

/**
 * Names at the cache's top that belong to no kind (no kind's directory, no entry a kind
 * keeps there, no temporary): shown by `kjx cache`, never removed.
 */
export function foreignNames(root: string): string[] {
  const ours = (name: string) =>
    ATOMIC_TEMP.test(name) ||
    CACHE_KINDS.some((k) =>
      k.where.some((w) => {
        const [top, ...below] = w.split('/');
        return globRe(top!).test(name) && (below.length > 0 || (k.names ?? HASHED).test(name));
      }),
    );
  return listDir(root).filter((n) => !ours(n));
}

/** Remove an entry's files and trees; what another process removed first is no error. */
export function removeEntry(entry: CacheEntry): void {
  for (const p of entry.paths) rmSync(p, { recursive: true, force: true });
}
