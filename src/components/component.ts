/**
 * A component is a named piece of the guest (busybox, runit, dropbear, ...): which
 * Debian packages it needs and which of their files it takes. Components are plain
 * values; the plan merges what they ask for, the assembler calls `assemble`.
 */

import { addEntry, ensureParents, newTree, resolveInTree, type Tree } from '../rootfs/tree.js';
import type { Spec } from '../spec/schema.js';
import { KjxError, type WarnFn } from '../util/errors.js';

export interface AssembleContext {
  spec: Spec;
  /** The staged files of one downloaded package (throws if the package was not planned). */
  staged(pkg: string): Tree;
  warn: WarnFn;
}

export interface Component {
  name: string;
  /** Debian packages to download (their Depends are resolved for library closure). */
  packages(spec: Spec): string[];
  /** The files this component puts into the image. */
  assemble(ctx: AssembleContext): Tree;
}

/**
 * Take exact paths from a staged package: each path must exist; symlinks along the way
 * arrive as symlinks and their targets as files (so `/bin/sh -> busybox` style chains keep working).
 */
export function takeFiles(pkgName: string, pkg: Tree, paths: string[]): Tree {
  const out = newTree();
  for (const p of paths) {
    let cur = p;
    for (let hops = 0; hops < 40; hops++) {
      const e = pkg.get(cur);
      if (!e) {
        const r = resolveInTree(pkg, cur);
        if (!r) {
          throw new KjxError('TREE_INVALID', `package ${pkgName} has no ${p}`, {
            hint: 'the Debian package layout changed; report this to kjx',
          });
        }
        addEntry(out, r.entry);
        break;
      }
      addEntry(out, e);
      if (e.type !== 'symlink') break;
      cur = e.target.startsWith('/') ? e.target : `${cur.slice(0, cur.lastIndexOf('/'))}/${e.target}`;
    }
  }
  ensureParents(out);
  return out;
}
