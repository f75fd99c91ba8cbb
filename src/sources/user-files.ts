/**
 * The `files:` layer: inline content, host files, directories and symlinks the spec
 * names, with the mode and owner it gives (root:root otherwise).
 */

import { addEntry, type EntrySource, newTree, type Tree } from '../rootfs/tree.js';
import type { FileSpec, Owner } from '../spec/schema.js';
import { formatPosition, KjxError } from '../util/errors.js';
import { sha256 } from '../util/hash.js';
import { readHostFile } from './host-files.js';

/** Account names the image's /etc/passwd knows: name -> uid and gid of its own group. */
export type AccountIds = ReadonlyMap<string, { uid: number; gid: number }>;

const ROOT_ONLY: AccountIds = new Map([['root', { uid: 0, gid: 0 }]]);

export function ownerIds(
  owner: Owner,
  what: string,
  accounts: AccountIds = ROOT_ONLY,
): { uid: number; gid: number } {
  const id = (v: number | string, field: 'uid' | 'gid'): number => {
    if (typeof v === 'number') return v;
    const n = accounts.get(v)?.[field];
    if (n === undefined) {
      throw new KjxError('SPEC_INVALID', `${what}: unknown owner "${v}"`, {
        hint: `use numeric ids (1000:1000) or a name from users (${[...accounts.keys()].join(', ')})`,
      });
    }
    return n;
  };
  return { uid: id(owner.user, 'uid'), gid: id(owner.group, 'gid') };
}

function hostData(f: FileSpec, i: number): Buffer | undefined {
  return 'from' in f ? readHostFile(f.from, `files[${i}] (${f.path}): from ${f.fromRef}`) : undefined;
}

export function userFiles(files: FileSpec[], accounts: AccountIds = ROOT_ONLY): Tree {
  const tree = newTree();
  files.forEach((f, i) => {
    const what = `files[${i}] (${f.path})`;
    const { uid, gid } = ownerIds(f.owner, what, accounts);
    const ref = 'fromRef' in f ? f.fromRef : `files[${i}]`;
    const at = `files[${i}]${f.position ? ` at ${formatPosition(f.position)}` : ''}`;
    const source: EntrySource = { kind: 'input', ref, at: 'fromRef' in f ? `${at} (from ${ref})` : at };
    const base = { path: f.path, mode: f.mode, uid, gid, mtime: 0, source, override: f.override };
    if (f.type === 'dir') addEntry(tree, { ...base, type: 'dir' });
    else if (f.type === 'symlink')
      addEntry(tree, { ...base, mode: 0o777, type: 'symlink', target: f.target });
    else
      addEntry(tree, {
        ...base,
        type: 'file',
        data: hostData(f, i) ?? Buffer.from('content' in f ? f.content : ''),
      });
  });
  return tree;
}

/** What the files layer depends on, without building it (for the no-op check): host paths by content. */
export function userFilesKey(files: FileSpec[]): unknown {
  return files.map((f, i) => {
    const { from: _abs, position: _at, ...rest } = f as FileSpec & { from?: string };
    const data = hostData(f, i);
    return data ? { ...rest, sha256: sha256(data) } : rest;
  });
}
