/**
 * The on-disk cache checks what it reads back: a blob against its name, a stage
 * record against the hash on its first line, a tree through both. A damaged entry
 * reads as absent and is removed, so the stage runs again and rewrites it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { mk, newTree, type Tree } from '../../src/rootfs/tree.js';
import {
  type Cache,
  getBlob,
  getRecord,
  getTree,
  openCache,
  putBlob,
  putRecord,
  putTree,
} from '../../src/sources/cache.js';
import { sha256 } from '../../src/util/hash.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function cache(): Cache {
  const d = mkdtempSync(join(tmpdir(), 'kjx-cache-test-'));
  dirs.push(d);
  return openCache(d);
}

const blobFile = (c: Cache, sha: string) => join(c.root, 'blobs', sha.slice(0, 2), sha);
const recordFile = (c: Cache, key: string) => join(c.root, 'stages', `${key}.json`);

/** Flip one byte in place: same size, different content. */
function flipByte(file: string, at = 0): void {
  const b = readFileSync(file);
  b[at] = b[at]! ^ 0xff;
  writeFileSync(file, b);
}

const SRC = { kind: 'generated', by: 'test' } as const;
function sampleTree(): Tree {
  const t = newTree();
  for (const e of [
    mk.dir('/bin', SRC),
    mk.file('/bin/busybox', Buffer.alloc(4096, 7), SRC, 0o755),
    mk.symlink('/bin/sh', 'busybox', SRC),
    mk.file('/etc/motd', 'hello\n', SRC),
  ])
    t.set(e.path, e);
  return t;
}

describe('cache reads are checked', () => {
  it('a blob whose bytes changed reads as absent, is removed, and is written again by the next put', () => {
    const c = cache();
    const data = Buffer.from('the real bytes\n');
    const sha = putBlob(c, data);
    flipByte(blobFile(c, sha), 3);
    assert.equal(getBlob(c, sha), undefined, 'a damaged blob is never returned');
    assert.equal(existsSync(blobFile(c, sha)), false, 'and it is dropped');
    putBlob(c, data);
    assert.deepEqual(getBlob(c, sha), data);
  });

  it('a put over a damaged blob (never read since) replaces it', () => {
    const c = cache();
    const data = Buffer.from('the real bytes\n');
    const sha = putBlob(c, data);
    flipByte(blobFile(c, sha));
    putBlob(c, data);
    assert.deepEqual(readFileSync(blobFile(c, sha)), data);
  });

  it('a stage record whose JSON changed (still valid JSON) reads as absent and is removed', () => {
    const c = cache();
    putRecord(c, 'k', { mode: 493, name: 'x' });
    assert.deepEqual(getRecord(c, 'k'), { mode: 493, name: 'x' });
    const f = recordFile(c, 'k');
    writeFileSync(f, readFileSync(f, 'utf8').replace('493', '511'));
    assert.equal(getRecord(c, 'k'), undefined);
    assert.equal(existsSync(f), false);
  });

  it('truncated, empty, unhashed (the old format) or garbage records read as absent', () => {
    const c = cache();
    for (const text of ['', '{"mode":493}', `${'0'.repeat(64)}\n{}`, 'garbage\n{}']) {
      writeFileSync(recordFile(c, 'k'), text);
      assert.equal(getRecord(c, 'k'), undefined, JSON.stringify(text));
    }
    putRecord(c, 'k', { a: [1, 2, 3] });
    const f = recordFile(c, 'k');
    writeFileSync(f, readFileSync(f).subarray(0, -3));
    assert.equal(getRecord(c, 'k'), undefined, 'truncated');
  });

  it('a tree with one damaged blob reads as absent; stored again it reads back whole', () => {
    const c = cache();
    const t = sampleTree();
    putTree(c, 'tree', t);
    assert.deepEqual(getTree(c, 'tree'), t);
    const busybox = sha256(Buffer.alloc(4096, 7));
    flipByte(blobFile(c, busybox), 100);
    assert.equal(getTree(c, 'tree'), undefined);
    assert.equal(existsSync(blobFile(c, busybox)), false);
    putTree(c, 'tree', t);
    assert.deepEqual(getTree(c, 'tree'), t);
  });

  it('a tree record with a changed mode reads as absent', () => {
    const c = cache();
    putTree(c, 'tree', sampleTree());
    const f = recordFile(c, 'tree');
    const text = readFileSync(f, 'utf8');
    assert.match(text, /"mode":493/);
    writeFileSync(f, text.replace('"mode":493', '"mode":511'));
    assert.equal(getTree(c, 'tree'), undefined);
    assert.deepEqual(readdirSync(join(c.root, 'stages')), []);
  });
});
