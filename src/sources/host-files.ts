/**
 * Inputs from the host file system: single files named by `files:` and whole
 * directories (a local kernel's modules). Ownership never comes from the host:
 * what the spec says, else root.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { addEntry, type EntrySource, newTree, type Tree } from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';

export function readHostFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KjxError('INPUT_NOT_FOUND', `${what}: cannot read ${path} (${code ?? (e as Error).message})`, {
      hint: 'paths in kjx.yaml are relative to the directory of kjx.yaml',
    });
  }
}

/** Walk a host directory into a Tree rooted at `at` (regular files, dirs and symlinks). */
export function readHostDir(dir: string, at: string, ref: string): Tree {
  const tree = newTree();
  const source: EntrySource = { kind: 'input', ref };
  const walk = (host: string, guest: string): void => {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(host);
    } catch (e) {
      throw new KjxError(
        'INPUT_NOT_FOUND',
        `${ref}: cannot read ${host} (${(e as NodeJS.ErrnoException).code})`,
      );
    }
    const base = {
      path: guest,
      mode: st.mode & 0o7777,
      uid: 0,
      gid: 0,
      mtime: Math.floor(st.mtimeMs / 1000),
      source,
    };
    if (st.isDirectory()) {
      addEntry(tree, { ...base, type: 'dir' });
      for (const name of readdirSync(host).sort())
        walk(join(host, name), `${guest === '/' ? '' : guest}/${name}`);
    } else if (st.isSymbolicLink()) {
      addEntry(tree, { ...base, type: 'symlink', target: readlinkSync(host) });
    } else if (st.isFile()) {
      addEntry(tree, { ...base, type: 'file', data: readFileSync(host) });
    }
  };
  walk(dir, at);
  return tree;
}
