/**
 * The reproducibility pass: the one step between a Tree and any writer, like
 * u-root's MakeReproducible. It turns "when, where and in what order was this
 * built" into "what was built":
 *
 * - mtimes are clamped to SOURCE_DATE_EPOCH: nothing is later than it;
 * - ownership is the tree's own, never the builder's (no reader takes an owner
 *   from the host: sources/host-files.ts), and the names of one hard-linked inode
 *   carry one owner, mode and time: hard links in canonical form (hardlinks.ts);
 * - entries come in byte-wise path order, so parents precede children, whatever
 *   order the layers were merged in;
 * - inode numbers are 1, 2, ... in that order, shared by the names of one inode.
 *
 * Every writer (image/cpio.ts, tar-writer.ts, oci.ts, ext4.ts with its host
 * staging) takes a `ReproducibleTree`, so none can write a tree that skipped the
 * pass and none repeats it. Pure: a Tree in, a new value out; entries that need
 * no change are shared, not copied.
 */
import { KjxError } from '../util/errors.js';
import { canonicalHardlinks } from './hardlinks.js';
import type { Tree, TreeEntry } from './tree.js';

/** A tree ready for writers (see the module comment for what that means). */
export interface ReproducibleTree {
  /** SOURCE_DATE_EPOCH of the build: no mtime is later, writers date what they add with it. */
  readonly epoch: number;
  /** Every entry, in byte-wise path order. */
  readonly entries: readonly TreeEntry[];
  /** The same entries by path (iterating it gives `entries`' order). */
  readonly tree: Tree;
  /** Inode number of each path: 1, 2, ... in entry order; the names of a hard-linked inode share one. */
  readonly inodes: ReadonlyMap<string, number>;
}

/** The largest epoch every format stores (cpio's and ext4's 32-bit times). */
const U32_MAX = 0xffffffff;

/**
 * The pass. Hard links that dangle or loop keep an inode of their own and are
 * left for the writer to refuse, naming its format.
 * @throws KjxError USAGE for an epoch that is not whole seconds in 0..2^32-1
 */
export function makeReproducible(tree: Tree, epoch: number): ReproducibleTree {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > U32_MAX) {
    throw new KjxError('USAGE', `epoch ${epoch} is not a time every image format can store`, {
      hint: 'SOURCE_DATE_EPOCH must be whole seconds between 0 and 4294967295',
    });
  }
  // by key, which writers check against the entry's path (a mismatch is theirs to refuse)
  const sorted = [...canonicalHardlinks(tree)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const out: Tree = new Map();
  for (const [path, e] of sorted) out.set(path, e.mtime <= epoch ? e : { ...e, mtime: epoch });
  const entries = [...out.values()];
  const inodes = new Map<string, number>();
  let next = 1;
  for (const [path, e] of out) {
    // canonical form: a hard link names the inode's first path, which sorts before it
    const holder = e.type === 'hardlink' ? out.get(e.target) : undefined;
    const shared = holder && holder.type !== 'hardlink' ? inodes.get(holder.path) : undefined;
    inodes.set(path, shared ?? next++);
  }
  return { epoch, entries, tree: out, inodes };
}
