/**
 * What differs between two images, file by file: paths added, removed, and
 * changed in type, content, mode, owner, link target or device number. Works
 * on "facts" that a Tree (any artifact kjx reads) and a build manifest both
 * give, so any two of them compare.
 *
 * Two builds of different inputs carry different build ids, and a few
 * generated files contain theirs (/etc/os-release, the banner, the init
 * marker). When the caller can compare contents, `sameButBuildId` tells whether a
 * content change is only that; such paths are reported apart, not as changes,
 * so a diff shows what the inputs changed. Pure: facts in, differences out.
 */

import { canonicalHardlinks } from '../rootfs/hardlinks.js';
import { fileHash, sortedEntries, type Tree } from '../rootfs/tree.js';
import type { ManifestFile } from './manifest.js';

export interface FileFacts {
  path: string;
  type: string;
  /** Permission bits. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  sha256?: string;
  /** Symlink or hard link target. */
  target?: string;
  /** "major:minor" of a device node. */
  device?: string;
}

export type FactsIndex = Map<string, FileFacts>;

/**
 * Facts of every path. Hard links are put in one canonical form, whatever the
 * format said: the first name of an inode in path order is the file, the others
 * link to it (the order cpio and tar write them in), so formats compare equal.
 */
export function factsFromTree(tree: Tree): FactsIndex {
  const out: FactsIndex = new Map();
  for (const e of sortedEntries(canonicalHardlinks(tree))) {
    const f: FileFacts = {
      path: e.path,
      type: e.type,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size: e.type === 'file' ? e.data.length : 0,
    };
    if (e.type === 'file') f.sha256 = fileHash(e);
    if (e.type === 'symlink' || e.type === 'hardlink') f.target = e.target;
    if (e.type === 'char' || e.type === 'block') f.device = `${e.major}:${e.minor}`;
    out.set(e.path, f);
  }
  return out;
}

export function factsFromManifest(files: ManifestFile[]): FactsIndex {
  const out: FactsIndex = new Map();
  for (const m of files) {
    const f: FileFacts = {
      path: m.path,
      type: m.type,
      mode: Number.parseInt(m.mode, 8),
      uid: m.uid,
      gid: m.gid,
      size: m.size,
    };
    if (m.sha256 !== undefined) f.sha256 = m.sha256;
    if (m.target !== undefined) f.target = m.target;
    if (m.device !== undefined) f.device = m.device;
    out.set(m.path, f);
  }
  // hard links in the same canonical form as factsFromTree's
  const groups = new Map<string, string[]>();
  for (const f of out.values()) {
    if (f.type !== 'hardlink') continue;
    let h: FileFacts | undefined = f;
    for (let hops = 0; h?.type === 'hardlink' && hops < 64; hops++) h = out.get(h.target ?? '');
    if (!h || h.type === 'hardlink') continue;
    groups.set(h.path, [...(groups.get(h.path) ?? [h.path]), f.path]);
  }
  for (const [holder, names] of groups) {
    const h = out.get(holder)!;
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    out.set(names[0]!, { ...h, path: names[0]! });
    for (const p of names.slice(1)) {
      out.set(p, {
        path: p,
        type: 'hardlink',
        mode: h.mode,
        uid: h.uid,
        gid: h.gid,
        size: 0,
        target: names[0]!,
      });
    }
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export type ChangeKind = 'type' | 'content' | 'mode' | 'owner' | 'target' | 'device';

export interface DiffEntry {
  path: string;
  kind: 'added' | 'removed' | 'changed';
  /** For `changed`: what changed. */
  changes: ChangeKind[];
  a?: FileFacts;
  b?: FileFacts;
}

export interface DiffResult {
  entries: DiffEntry[];
  /** Paths whose only difference is the build id inside their content. */
  buildIdOnly: string[];
}

export interface DiffOptions {
  /** For a path whose content differs: is the difference only the build id? */
  sameButBuildId?: (path: string) => boolean;
  /** Paths to leave out entirely (e.g. /lost+found when one side is ext4). */
  ignore?: (path: string) => boolean;
}

function changesOf(a: FileFacts, b: FileFacts): ChangeKind[] {
  if (a.type !== b.type) return ['type'];
  const c: ChangeKind[] = [];
  if (a.sha256 !== b.sha256 || a.size !== b.size) c.push('content');
  if (a.mode !== b.mode) c.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) c.push('owner');
  if (a.target !== b.target) c.push('target');
  if (a.device !== b.device) c.push('device');
  return c;
}

/** Differences from `a` to `b`, sorted by path. */
export function diffFacts(a: FactsIndex, b: FactsIndex, opts: DiffOptions = {}): DiffResult {
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const entries: DiffEntry[] = [];
  const buildIdOnly: string[] = [];
  for (const path of paths) {
    if (opts.ignore?.(path)) continue;
    const fa = a.get(path);
    const fb = b.get(path);
    if (!fa) entries.push({ path, kind: 'added', changes: [], b: fb! });
    else if (!fb) entries.push({ path, kind: 'removed', changes: [], a: fa });
    else {
      let changes = changesOf(fa, fb);
      if (changes.includes('content') && opts.sameButBuildId?.(path)) {
        changes = changes.filter((c) => c !== 'content');
        if (changes.length === 0) buildIdOnly.push(path);
      }
      if (changes.length > 0) entries.push({ path, kind: 'changed', changes, a: fa, b: fb });
    }
  }
  return { entries, buildIdOnly };
}

/** `0644`-style mode. */
export function octalMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/** One line describing a change, e.g. "mode 0755 -> 0644". */
export function describeChange(kind: ChangeKind, a: FileFacts, b: FileFacts): string {
  switch (kind) {
    case 'type':
      return `type ${a.type} -> ${b.type}`;
    case 'content':
      return `content ${a.size} B -> ${b.size} B${a.sha256 && b.sha256 ? ` (sha256 ${a.sha256.slice(0, 12)} -> ${b.sha256.slice(0, 12)})` : ''}`;
    case 'mode':
      return `mode ${octalMode(a.mode)} -> ${octalMode(b.mode)}`;
    case 'owner':
      return `owner ${a.uid}:${a.gid} -> ${b.uid}:${b.gid}`;
    case 'target':
      return `target ${a.target ?? ''} -> ${b.target ?? ''}`;
    case 'device':
      return `device ${a.device ?? ''} -> ${b.device ?? ''}`;
  }
}
