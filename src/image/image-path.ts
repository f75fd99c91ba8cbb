/**
 * A path inside an image, looked up for `kjx inspect IMAGE PATH` as the guest
 * would: symlinks followed in every component (a link in the middle of the path
 * as much as one at its end), at most MAX_LINK_HOPS of them (the kernel's ELOOP
 * limit, so a loop in a hostile image ends), hard links to the entry they name.
 */
import { followPath, MAX_LINK_HOPS, type Tree, type TreeEntry } from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';
import { printable } from '../util/printable.js';

export interface ImagePath {
  /** Where the path's own entry is, links in its parents followed (a link at the end stays). */
  path: string;
  entry: TreeEntry;
  /** What the path names once a link at its end (and a hard link) is followed; absent when that leads nowhere. */
  target?: { path: string; entry: TreeEntry };
}

function notFound(
  rawPath: string,
  rawImage: string,
  why: 'missing' | 'loop' | 'not-dir',
  rawAt: string,
): KjxError {
  // names come from the image (and the user's argument): printed escaped
  const [path, image, at] = [rawPath, rawImage, rawAt].map(printable);
  const what =
    why === 'loop'
      ? `more than ${MAX_LINK_HOPS} symlinks followed at ${at} (a loop?)`
      : why === 'not-dir'
        ? `${at} is not a directory`
        : `${at} does not exist`;
  return new KjxError('USAGE', `${path} is not in ${image}: ${what}`, {
    hint: `\`kjx inspect ${image}\` lists what is there`,
  });
}

/**
 * Look `path` (absolute, normalized) up in an image's tree.
 * @throws KjxError USAGE when it is not there, names a non-directory as a
 *   directory, or loops, saying where the lookup stopped
 */
export function lookupImagePath(tree: Tree, path: string, image: string): ImagePath {
  const own = followPath(tree, path);
  if (!own.ok) throw notFound(path, image, own.why, own.at);
  const out: ImagePath = { path: own.path, entry: own.entry };
  const last = own.entry.type === 'symlink' ? followPath(tree, own.path, { followLast: true }) : own;
  // a link at the end that leads nowhere (or loops) is shown as the link itself
  if (last.ok) {
    const t = last.entry.type === 'hardlink' ? tree.get(last.entry.target) : last.entry;
    const tPath = last.entry.type === 'hardlink' ? last.entry.target : last.path;
    if (t) out.target = { path: tPath, entry: t };
  }
  return out;
}
