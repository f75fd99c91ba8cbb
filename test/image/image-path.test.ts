/**
 * `kjx inspect IMAGE PATH` looks PATH up as the guest would: links followed in
 * every component, not only the last, and a loop ends after 40 of them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lookupImagePath } from '../../src/image/image-path.js';
import {
  type EntrySource,
  ensureParents,
  mk,
  newTree,
  type Tree,
  type TreeEntry,
} from '../../src/rootfs/tree.js';
import { assertKjxError } from '../helpers/kjx-error.js';

const SRC: EntrySource = { kind: 'input', ref: 'img' };

function treeOf(...entries: TreeEntry[]): Tree {
  const t = newTree();
  for (const e of entries) t.set(e.path, e);
  ensureParents(t, SRC);
  return t;
}

const image = treeOf(
  mk.dir('/opt/real', SRC),
  mk.file('/opt/real/ok.txt', 'ok\n', SRC),
  mk.symlink('/opt/link', 'real', SRC),
  mk.symlink('/opt/abs', '/opt/link', SRC),
  mk.symlink('/etc/ok', '../opt/abs/ok.txt', SRC),
  mk.symlink('/etc/dangling', 'nowhere', SRC),
  { ...mk.file('/opt/hard', '', SRC), type: 'hardlink', target: '/opt/real/ok.txt' } as TreeEntry,
  mk.symlink('/loop/a', 'b', SRC),
  mk.symlink('/loop/b', 'a', SRC),
);

function usage(f: () => unknown, says: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assertKjxError(e, 'USAGE');
    assert.match(e.message, says);
    return true;
  });
}

describe('lookupImagePath', () => {
  it('follows a link in the middle of the path (relative, then absolute)', () => {
    for (const p of ['/opt/link/ok.txt', '/opt/abs/ok.txt']) {
      const r = lookupImagePath(image, p, 'img');
      assert.equal(r.path, '/opt/real/ok.txt', p);
      assert.equal(r.target?.entry.type, 'file');
    }
  });

  it('keeps a link at the end as its own entry and follows it for the target', () => {
    const r = lookupImagePath(image, '/etc/ok', 'img');
    assert.equal(r.path, '/etc/ok');
    assert.equal(r.entry.type, 'symlink');
    assert.equal(r.target?.path, '/opt/real/ok.txt');
    const dir = lookupImagePath(image, '/opt/link', 'img');
    assert.equal(dir.target?.path, '/opt/real');
    assert.equal(dir.target?.entry.type, 'dir');
  });

  it('a hard link leads to the file it names; a dangling link has no target', () => {
    assert.equal(lookupImagePath(image, '/opt/hard', 'img').target?.path, '/opt/real/ok.txt');
    assert.equal(lookupImagePath(image, '/etc/dangling', 'img').target, undefined);
  });

  it('a loop in the middle stops after 40 links; at the end it is shown as the link', () => {
    usage(() => lookupImagePath(image, '/loop/a/x', 'img'), /more than 40 symlinks followed/);
    assert.equal(lookupImagePath(image, '/loop/a', 'img').target, undefined);
  });

  it('a chain of 40 links is followed, 41 is a loop', () => {
    const chain = (n: number): Tree => {
      const t: TreeEntry[] = [mk.dir('/d/end', SRC), mk.file('/d/end/f', 'f', SRC)];
      for (let i = 0; i < n; i++) t.push(mk.symlink(`/d/l${i}`, i === n - 1 ? 'end' : `l${i + 1}`, SRC));
      return treeOf(...t);
    };
    assert.equal(lookupImagePath(chain(40), '/d/l0/f', 'img').path, '/d/end/f');
    usage(() => lookupImagePath(chain(41), '/d/l0/f', 'img'), /more than 40/);
  });

  it('a missing path or a file used as a directory says where the lookup stopped', () => {
    usage(
      () => lookupImagePath(image, '/opt/link/nope', 'img'),
      /^\/opt\/link\/nope is not in img: \/opt\/real\/nope does not exist$/,
    );
    usage(
      () => lookupImagePath(image, '/opt/real/ok.txt/x', 'img'),
      /\/opt\/real\/ok\.txt is not a directory/,
    );
  });
});
