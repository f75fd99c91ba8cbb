/**
 * Staging: turn the tar entries of a package's data.tar into a Tree, in memory.
 *
 * This is where untrusted archive names meet our filesystem model, so it is the
 * one place that decides what is safe (DESIGN.md: "archives are extracted without
 * escaping their directory"). The classic tar attacks, each refused with a
 * KjxError DEB_UNSAFE naming the package and the exact archived name:
 * - absolute names ("/etc/shadow") and names with a ".." segment;
 * - hard links whose target is absolute, has "..", or is not an earlier entry;
 * - symlinks whose relative target, resolved from the link's directory, climbs
 *   above the root (absolute targets are fine: in the guest they resolve inside
 *   its own root, e.g. "/etc/alternatives/x");
 * - entries that would be written *through* a symlink (or a file) placed earlier,
 *   e.g. "a -> /tmp" then "a/x", and entries that would replace a directory that
 *   already has entries below it, or appear twice.
 * The symlink check is lexical, on the target text alone; a target that climbs
 * through other symlinks is still confined to the guest root when the guest
 * resolves it, and writers never follow symlinks of the tree.
 */

import {
  type EntrySource,
  newTree,
  normalizePath,
  parentOf,
  type Tree,
  type TreeEntry,
} from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';
import type { TarEntry } from './tar.js';

/** The package the entries came from; it becomes each entry's `source`. */
export interface DebPackageRef {
  name: string;
  version: string;
}

/**
 * Build a Tree from a package's data.tar entries (see `readDeb`).
 *
 * Names are normalized ("./usr/bin/x" -> "/usr/bin/x", "./" -> "/"); mode, uid,
 * gid and mtime are kept as archived; every entry's source is
 * `{ kind: 'deb', package, version }`. A directory archived twice keeps the later
 * metadata, as tar extraction would. Missing parent directories are not invented
 * (use `ensureParents`).
 *
 * @throws KjxError DEB_UNSAFE for any entry that could escape the root or be
 *   written through a symlink (see the module comment), naming package and entry
 */
export function stageDeb(entries: TarEntry[], pkg: DebPackageRef): Tree {
  const source: EntrySource = { kind: 'deb', package: pkg.name, version: pkg.version };
  const tree = newTree();
  // Every proper ancestor of a path staged so far: a non-directory must not land on one.
  const ancestors = new Set<string>();

  for (const e of entries) {
    const refuse = (what: string): KjxError =>
      new KjxError('DEB_UNSAFE', `package ${pkg.name} ${pkg.version}: entry "${e.name}" ${what}`, {
        hint: 'the package is malformed or hostile; kjx will not stage it. Use another version or report it to its maintainer',
      });
    const path = safeName(e.name, 'name', refuse);

    for (let p = parentOf(path); p !== '/'; p = parentOf(p)) {
      const parent = tree.get(p);
      if (parent?.type === 'symlink') {
        throw refuse(
          `would be written through the symlink ${p} -> ${parent.target} placed earlier in the archive`,
        );
      }
      if (parent && parent.type !== 'dir')
        throw refuse(`has ${p} as parent, which is a ${parent.type}, not a directory`);
    }
    const old = tree.get(path);
    if (old && !(old.type === 'dir' && e.type === 'dir')) {
      throw refuse(`appears twice in the archive (as ${old.type}, then as ${e.type})`);
    }
    if (e.type !== 'dir' && ancestors.has(path)) {
      throw refuse(`is a ${e.type} at a path that already has entries below it`);
    }
    if (path === '/' && e.type !== 'dir') throw refuse(`makes the root a ${e.type}`);

    const base = { path, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, mtime: e.mtime, source };
    let entry: TreeEntry;
    switch (e.type) {
      case 'file':
        entry = { ...base, type: 'file', data: e.data };
        break;
      case 'dir':
        entry = { ...base, type: 'dir' };
        break;
      case 'fifo':
        entry = { ...base, type: 'fifo' };
        break;
      case 'char':
      case 'block':
        entry = { ...base, type: e.type, major: e.devmajor, minor: e.devminor };
        break;
      case 'symlink': {
        const target = e.linkname;
        if (target === '') throw refuse('is a symlink with an empty target');
        if (target.includes('\0')) throw refuse('is a symlink whose target contains a NUL byte');
        if (!target.startsWith('/') && climbsAboveRoot(parentOf(path), target)) {
          throw refuse(`is a symlink to "${target}", which climbs above the package root`);
        }
        entry = { ...base, type: 'symlink', target };
        break;
      }
      case 'hardlink': {
        const targetPath = safeName(e.linkname, 'hard link target', refuse);
        const target = tree.get(targetPath);
        if (!target)
          throw refuse(`is a hard link to "${e.linkname}", which is not an earlier entry of the archive`);
        if (target.type === 'dir') throw refuse(`is a hard link to the directory "${e.linkname}"`);
        // Point at the original, so writers see one file and its links, never chains.
        entry = {
          ...base,
          type: 'hardlink',
          target: target.type === 'hardlink' ? target.target : targetPath,
        };
        break;
      }
    }
    tree.set(path, entry);
    for (let p = parentOf(path); !ancestors.has(p); p = parentOf(p)) {
      ancestors.add(p);
      if (p === '/') break;
    }
  }
  return tree;
}

/** Check an archived name (or hard link target) and return its Tree path. */
function safeName(name: string, what: string, refuse: (what: string) => KjxError): string {
  if (name === '') throw refuse(`has an empty ${what}`);
  if (name.includes('\0')) throw refuse(`has a ${what} containing a NUL byte`);
  if (name.startsWith('/')) throw refuse(`has an absolute ${what} "${name}"`);
  // Any ".." is refused, even one that stays inside: no honest package needs it.
  if (name.split('/').includes('..')) throw refuse(`has a ${what} "${name}" with a ".." segment`);
  return normalizePath(name);
}

/** Does a relative symlink target, resolved lexically from `dir`, go above "/"? */
function climbsAboveRoot(dir: string, target: string): boolean {
  let depth = dir === '/' ? 0 : dir.split('/').length - 1;
  for (const seg of target.split('/')) {
    if (seg === '' || seg === '.') continue;
    depth += seg === '..' ? -1 : 1;
    if (depth < 0) return true;
  }
  return false;
}
