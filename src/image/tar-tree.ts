/**
 * A Tree from the entries of a rootfs tarball (as `parseTar` reads them), for
 * `kjx inspect` and `kjx diff`. Names are normalized ("./etc/passwd" and
 * "etc/passwd" are "/etc/passwd"); hard link targets become absolute paths. A
 * name that climbs above the root is ARTIFACT_INVALID; nothing is extracted.
 * Each entry is charged to `budget` when one is given.
 */
import { type EntrySource, newTree, normalizePath, type Tree } from '../rootfs/tree.js';
import type { TarEntry } from '../sources/tar.js';
import { type Budget, charge, ENTRY_COST } from '../util/budget.js';
import { KjxError } from '../util/errors.js';
import { printable } from '../util/printable.js';

export function tarToTree(entries: TarEntry[], name: string, source: EntrySource, budget?: Budget): Tree {
  const tree = newTree();
  const norm = (p: string, what: string): string => {
    try {
      return normalizePath(p);
    } catch (cause) {
      throw new KjxError(
        'ARTIFACT_INVALID',
        `${name}: ${what} ${printable(JSON.stringify(p))} climbs above the root`,
        {
          cause,
        },
      );
    }
  };
  for (const e of entries) {
    const path = norm(e.name, 'entry');
    // contents are views into the archive (charged where it was inflated); the entries are not
    charge(budget, ENTRY_COST + path.length, `listing ${name}`);
    const base = { path, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, source };
    switch (e.type) {
      case 'file':
        tree.set(path, { ...base, type: 'file', data: e.data });
        break;
      case 'dir':
        tree.set(path, { ...base, type: 'dir' });
        break;
      case 'symlink':
        tree.set(path, { ...base, type: 'symlink', target: e.linkname });
        break;
      case 'hardlink':
        tree.set(path, { ...base, type: 'hardlink', target: norm(e.linkname, 'hard link target') });
        break;
      case 'char':
      case 'block':
        tree.set(path, { ...base, type: e.type, major: e.devmajor, minor: e.devminor });
        break;
      case 'fifo':
        tree.set(path, { ...base, type: 'fifo' });
        break;
    }
  }
  return tree;
}
