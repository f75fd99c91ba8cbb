/**
 * A Tree written into a host directory, for tools that fill a file system from
 * one (`mke2fs -d`). The tree comes from packages, images and the spec, so its
 * paths and link targets are not trusted: nothing here ever follows a link.
 *
 * - the tree is refused first if any entry lies below a non-directory
 *   (`refuseBelowNonDirs`), so a link from one layer cannot carry another
 *   layer's entry out of the staging directory;
 * - then, as a second guard that does not depend on the tree being right, every
 *   entry goes into a directory this function made itself (checked with lstat),
 *   files are opened with O_CREAT|O_EXCL|O_NOFOLLOW, directories, symlinks and
 *   hard links are created with calls that fail on anything already there.
 *
 * Modes on the host are the builder's (0700 directories, 0600 files); owners,
 * modes and device nodes are the writer's job (ext4.ts does them with debugfs).
 */
import {
  closeSync,
  constants,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { ReproducibleTree } from '../rootfs/reproducible.js';
import { parentOf, refuseBelowNonDirs, type TreeEntry } from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';

const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function refused(e: TreeEntry, why: string, cause?: unknown): KjxError {
  return new KjxError('TREE_INVALID', `${e.path}: not staged for the file system: ${why}`, {
    hint: 'kjx never writes through a link on the host; report this with the spec that caused it',
    ...(cause === undefined ? {} : { cause }),
  });
}

function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/**
 * Stage the tree's directories, files, symlinks and hard links under `dir`, an
 * empty directory. Device nodes and fifos are left to the caller.
 * @throws KjxError TREE_CONFLICT for an entry below a non-directory of the tree,
 *   TREE_INVALID when the host directory does not hold what was made in it
 */
export function stageTreeOnHost(image: ReproducibleTree, dir: string): void {
  const { tree, entries } = image;
  refuseBelowNonDirs(tree);
  const made = new Set<string>(['/']);
  const into = (e: TreeEntry, path: string): string => {
    const parent = parentOf(path);
    if (!made.has(parent)) throw refused(e, `its parent ${parent} is not a directory of the tree`);
    const host = join(dir, parent);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(host);
    } catch (cause) {
      throw refused(e, `${parent} is gone from the staging directory`, cause);
    }
    if (!st.isDirectory()) throw refused(e, `${parent} is no longer a directory in the staging directory`);
    return join(dir, path);
  };
  for (const e of entries) {
    if (e.path === '/') continue; // the staging directory itself
    const p = into(e, e.path);
    try {
      switch (e.type) {
        case 'dir':
          mkdirSync(p, { mode: 0o700 });
          made.add(e.path);
          break;
        case 'file': {
          const fd = openSync(p, CREATE_FILE, 0o600);
          try {
            writeAll(fd, e.data);
          } finally {
            closeSync(fd);
          }
          break;
        }
        case 'symlink':
          symlinkSync(e.target, p);
          break;
        case 'hardlink': {
          const t = tree.get(e.target);
          if (t?.type !== 'file')
            throw refused(e, `hard link to ${t ? `a ${t.type}` : 'a missing entry'} ${e.target}`);
          break; // linked below, once every target exists
        }
        default:
          break; // devices and fifos: the writer's own step
      }
    } catch (cause) {
      if (cause instanceof KjxError) throw cause;
      throw refused(e, (cause as NodeJS.ErrnoException).code ?? String(cause), cause);
    }
  }
  for (const e of entries) {
    if (e.type !== 'hardlink') continue;
    const from = into(e, e.target);
    const to = into(e, e.path);
    try {
      // link(2) does not follow a symlink named as its source; every parent was checked above
      linkSync(from, to);
    } catch (cause) {
      throw refused(e, (cause as NodeJS.ErrnoException).code ?? String(cause), cause);
    }
  }
}
