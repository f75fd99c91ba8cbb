/**
 * One canonical form for hard links: of all the names of an inode, the first in
 * path order holds the data (and the inode's mode, owner and time), the others
 * are `hardlink` entries pointing at it. It is the order archives need (tar and
 * cpio readers link a later name to an earlier one) and the form every reader
 * of kjx gives back, so a tree compares equal across formats whichever name the
 * original tree made the file.
 */
import type { Tree, TreeEntry } from './tree.js';

/** The tree with hard links in canonical form (entries that need no change are shared). */
export function canonicalHardlinks(tree: Tree): Tree {
  const holderOf = (path: string): TreeEntry | undefined => {
    let e = tree.get(path);
    for (let hops = 0; e?.type === 'hardlink' && hops < 64; hops++) e = tree.get(e.target);
    return e?.type === 'hardlink' ? undefined : e;
  };
  const names = new Map<TreeEntry, string[]>();
  for (const e of tree.values()) {
    if (e.type !== 'hardlink') continue;
    const h = holderOf(e.path);
    if (!h) continue; // dangling or a loop: left for the writer to report
    const list = names.get(h) ?? [h.path];
    list.push(e.path);
    names.set(h, list);
  }
  if (names.size === 0) return tree;
  const out: Tree = new Map(tree);
  for (const [holder, list] of names) {
    list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const first = list[0]!;
    out.set(first, { ...holder, path: first });
    const { mode, uid, gid, mtime, source } = holder;
    for (const p of list.slice(1))
      out.set(p, { type: 'hardlink', path: p, target: first, mode, uid, gid, mtime, source });
  }
  return out;
}
