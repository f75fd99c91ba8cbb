/**
 * Test helper: read a directory of the host into a Tree (what the .deb reader
 * produces from a package), so tests can run passes over real extracted packages.
 * Ownership is fixed to root, as in a package.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type EntrySource, newTree, type Tree } from '../../src/rootfs/tree.js';

/** Walk `dir` (not following symlinks) into a Tree rooted at "/". */
export function treeFromHostDir(dir: string, source: EntrySource): Tree {
  const tree = newTree();
  const walk = (host: string, path: string) => {
    for (const name of readdirSync(host).sort()) {
      const h = join(host, name);
      const p = path === '/' ? `/${name}` : `${path}/${name}`;
      const st = lstatSync(h);
      const base = {
        path: p,
        mode: st.mode & 0o7777,
        uid: 0,
        gid: 0,
        mtime: Math.floor(st.mtimeMs / 1000),
        source,
      };
      if (st.isDirectory()) {
        tree.set(p, { ...base, type: 'dir' });
        walk(h, p);
      } else if (st.isSymbolicLink()) {
        tree.set(p, { ...base, type: 'symlink', target: readlinkSync(h) });
      } else if (st.isFile()) {
        tree.set(p, { ...base, type: 'file', data: readFileSync(h) });
      }
    }
  };
  walk(dir, '/');
  return tree;
}
