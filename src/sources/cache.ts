/**
 * The on-disk cache under `$XDG_CACHE_HOME/kjx` (default `~/.cache/kjx`):
 *
 *   debs/<sha256>.deb      downloaded packages, content-addressed
 *   blobs/<sha256>         file contents of cached stages, content-addressed
 *   stages/<key>.json      a stage's result (a serialized Tree or record), keyed by
 *                          the hash of everything the stage read
 *
 * Everything is written to a temporary name and renamed, so a build killed at any
 * moment leaves a usable cache: an entry either exists whole or not at all. What
 * is read back is checked against its hash (a blob or .deb against its name, a
 * stage record against the sha256 on its first line): a damaged entry is removed
 * and reads as absent, so the stage is computed again and rewrites it, never used.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Tree, TreeEntry } from '../rootfs/tree.js';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import { sha256 } from '../util/hash.js';
import { sha256File } from '../util/hash-file.js';

export interface Cache {
  root: string;
}

/** Where the cache is: `root`, else KJX_CACHE_DIR, else `$XDG_CACHE_HOME/kjx` (`~/.cache/kjx`). */
export function cacheRoot(root?: string): string {
  return (
    root ?? process.env.KJX_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kjx')
  );
}

export function openCache(root?: string): Cache {
  const base = cacheRoot(root);
  for (const d of ['debs', 'blobs', 'stages', 'tmp']) mkdirSync(join(base, d), { recursive: true });
  return { root: base };
}

export function debPath(cache: Cache, sha: string): string {
  return join(cache.root, 'debs', `${sha}.deb`);
}

/**
 * A fresh private temporary directory inside the cache (same filesystem, so renames are
 * atomic), named with this process's pid: a build's sweep and `kjx cache clean` remove
 * only those whose process is gone.
 */
export function cacheTempDir(cache: Cache, prefix: string): string {
  return mkdtempSync(join(cache.root, 'tmp', `${prefix}-${process.pid}-`));
}

/**
 * What `read` gives of a cache file, or undefined when the file is not there: also when
 * it goes between a look and the read (`kjx cache clean` in another process), which is
 * just absent.
 */
function ifThere<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

const readIfThere = (p: string) => ifThere(() => readFileSync(p));

/** Read a cached .deb, verifying its content still matches its name. */
export function readDebFromCache(cache: Cache, sha: string): Buffer | undefined {
  const p = debPath(cache, sha);
  const data = readIfThere(p);
  if (!data) return undefined;
  if (sha256(data) !== sha) {
    rmSync(p, { force: true }); // a damaged entry is dropped, never used
    return undefined;
  }
  return data;
}

/** Put downloaded .deb bytes into the cache after checking their sha256. */
export function adoptDeb(cache: Cache, data: Buffer, expectedSha: string, what: string): Buffer {
  const got = sha256(data);
  if (got !== expectedSha) {
    throw new KjxError('PKG_FETCH', `${what}: sha256 ${got} does not match the expected ${expectedSha}`, {
      hint: 'the apt mirror changed under the lock; run `kjx build --update-lock`',
    });
  }
  // written, not renamed: the download directory may sit on another file system (apt-sandbox.ts)
  writeFileAtomic(debPath(cache, expectedSha), data);
  return data;
}

function blobPath(cache: Cache, sha: string): string {
  return join(cache.root, 'blobs', sha.slice(0, 2), sha);
}

/** Store content under its sha256; one already there is kept only if it is whole. */
export function putBlob(cache: Cache, data: Buffer): string {
  const sha = sha256(data);
  const p = blobPath(cache, sha);
  // puts happen when a stage was computed anyway: checking what is there costs little beside it
  if (ifThere(() => sha256File(p)) !== sha) writeFileAtomic(p, data);
  return sha;
}

export function blobExists(cache: Cache, sha: string): boolean {
  return existsSync(blobPath(cache, sha));
}

/** A blob's content, if it is there and still hashes to its name (a damaged one is removed). */
export function getBlob(cache: Cache, sha: string): Buffer | undefined {
  const p = blobPath(cache, sha);
  const data = readIfThere(p);
  if (!data) return undefined;
  if (sha256(data) !== sha) {
    rmSync(p, { force: true });
    return undefined;
  }
  return data;
}

function stagePath(cache: Cache, key: string): string {
  return join(cache.root, 'stages', `${key}.json`);
}

/**
 * Store a JSON record for a stage key: the sha256 of the JSON on the first line,
 * the JSON after it (keys name inputs, not contents, so the record carries its own hash).
 */
export function putRecord(cache: Cache, key: string, value: unknown): void {
  const body = JSON.stringify(value);
  writeFileAtomic(stagePath(cache, key), `${sha256(body)}\n${body}`);
}

/** A stage record, if it is there and whole; a damaged or unreadable one is removed and reads as absent. */
export function getRecord<T>(cache: Cache, key: string): T | undefined {
  const p = stagePath(cache, key);
  const text = readIfThere(p)?.toString('utf8');
  if (text === undefined) return undefined;
  const nl = text.indexOf('\n');
  const body = text.slice(nl + 1);
  try {
    if (nl === 64 && sha256(body) === text.slice(0, nl)) return JSON.parse(body) as T;
  } catch {
    // not JSON although it hashes right: as damaged
  }
  rmSync(p, { force: true });
  return undefined;
}

type StoredEntry = Omit<TreeEntry, 'data'> & { blob?: string };

/** Store a Tree: file contents as blobs, the rest as one JSON record. */
export function putTree(cache: Cache, key: string, tree: Tree): void {
  const entries: StoredEntry[] = [];
  for (const e of tree.values()) {
    if (e.type === 'file') {
      const { data, ...rest } = e;
      entries.push({ ...rest, blob: putBlob(cache, data) });
    } else entries.push(e);
  }
  putRecord(cache, key, { entries });
}

/** Load a Tree stored by `putTree`; undefined if any piece is missing or damaged (each blob is checked). */
export function getTree(cache: Cache, key: string): Tree | undefined {
  const rec = getRecord<{ entries: StoredEntry[] }>(cache, key);
  if (!rec) return undefined;
  const tree: Tree = new Map();
  for (const s of rec.entries) {
    if (s.type === 'file') {
      const data = getBlob(cache, s.blob!);
      if (!data) return undefined;
      const { blob: _b, ...rest } = s;
      tree.set(s.path, { ...(rest as Omit<TreeEntry & { type: 'file' }, 'data'>), data });
    } else {
      tree.set(s.path, s as TreeEntry);
    }
  }
  return tree;
}
