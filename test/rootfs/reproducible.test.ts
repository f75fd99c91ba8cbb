/**
 * The reproducibility pass: what every writer relies on, checked on the pass
 * itself (the writers' byte-level tests are in test/image/).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import {
  type EntrySource,
  ensureParents,
  mk,
  newTree,
  type Tree,
  type TreeEntry,
} from '../../src/rootfs/tree.js';
import { kjxError } from '../helpers/kjx-error.js';

const SRC: EntrySource = { kind: 'generated', by: 'test' };
const EPOCH = 1_700_000_000;

function treeOf(entries: TreeEntry[]): Tree {
  const t = newTree();
  for (const e of entries) t.set(e.path, e);
  return t;
}

const hardlink = (path: string, target: string, over: Partial<TreeEntry> = {}): TreeEntry =>
  ({ ...mk.file(path, '', SRC), type: 'hardlink', target, ...over }) as TreeEntry;

describe('makeReproducible', () => {
  it('clamps mtimes to the epoch, shares unchanged entries and leaves the input as it was', () => {
    const t = treeOf([
      { ...mk.file('/new', 'x', SRC), mtime: EPOCH + 1000 },
      { ...mk.file('/old', 'y', SRC), mtime: 3 },
    ]);
    const r = makeReproducible(t, EPOCH);
    assert.equal(r.epoch, EPOCH);
    assert.equal(r.tree.get('/new')!.mtime, EPOCH);
    assert.equal(r.tree.get('/old')!.mtime, 3);
    assert.equal(r.tree.get('/old'), t.get('/old'), 'unchanged entries are shared');
    assert.equal(t.get('/new')!.mtime, EPOCH + 1000, 'the input is not modified');
  });

  it('orders entries by path, parents first, whatever order the tree was built in', () => {
    const t = treeOf([
      mk.file('/usr/bin/z', 'z', SRC),
      mk.file('/etc/a', 'a', SRC),
      mk.file('/usr/bin/a', 'a', SRC),
    ]);
    ensureParents(t, SRC);
    const r = makeReproducible(t, EPOCH);
    const order = ['/', '/etc', '/etc/a', '/usr', '/usr/bin', '/usr/bin/a', '/usr/bin/z'];
    assert.deepEqual(
      r.entries.map((e) => e.path),
      order,
    );
    assert.deepEqual([...r.tree.keys()], order, 'the map iterates in the same order');
    assert.deepEqual(
      order.map((p) => r.inodes.get(p)),
      [1, 2, 3, 4, 5, 6, 7],
      'inode numbers follow the order',
    );
  });

  it('gives the names of a hard-linked inode one inode, one owner and one time, the first name holding the data', () => {
    // the tree made /z the file; /a and /m link to it (one through the other)
    const t = treeOf([
      { ...mk.file('/z', 'data', SRC, 0o750), uid: 7, mtime: 5 },
      hardlink('/m', '/z', { uid: 99, mtime: EPOCH + 9 }),
      hardlink('/a', '/m'),
      mk.file('/b', 'b', SRC),
    ]);
    const r = makeReproducible(t, EPOCH);
    const a = r.tree.get('/a')!;
    assert.equal(a.type, 'file');
    assert.equal(a.type === 'file' && a.data.toString(), 'data');
    for (const p of ['/m', '/z']) {
      const e = r.tree.get(p)!;
      assert.deepEqual(
        [e.type, e.type === 'hardlink' && e.target, e.uid, e.mode, e.mtime],
        ['hardlink', '/a', 7, 0o750, 5],
      );
    }
    assert.deepEqual(
      ['/a', '/b', '/m', '/z'].map((p) => r.inodes.get(p)),
      [1, 2, 1, 1],
    );
  });

  it('leaves a dangling hard link its own inode, for the writer to refuse', () => {
    const r = makeReproducible(treeOf([hardlink('/a', '/gone'), mk.file('/b', 'b', SRC)]), EPOCH);
    assert.deepEqual([r.inodes.get('/a'), r.inodes.get('/b')], [1, 2]);
    assert.equal(r.tree.get('/a')!.type, 'hardlink');
  });

  it('is idempotent and does not depend on insertion order (property)', () => {
    const leaf = fc.record({
      name: fc.constantFrom('a', 'b', 'c', 'd'),
      dir: fc.constantFrom('/', '/x', '/x/y'),
      mtime: fc.integer({ min: 0, max: 2 * EPOCH }),
      link: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(leaf, { maxLength: 12 }), fc.nat(), (leaves, seed) => {
        const entries: TreeEntry[] = [];
        for (const l of leaves) {
          const path = `${l.dir === '/' ? '' : l.dir}/${l.name}`;
          if (entries.some((e) => e.path === path)) continue;
          const first = entries.find((e) => e.type === 'file');
          entries.push(
            l.link && first
              ? hardlink(path, first.path, { mtime: l.mtime })
              : { ...mk.file(path, path, SRC), mtime: l.mtime },
          );
        }
        const t = treeOf(entries);
        ensureParents(t, SRC);
        const all = [...t.values()];
        const k = Math.abs(seed) % Math.max(1, all.length);
        const shuffled = treeOf([...all.slice(k), ...all.slice(0, k)].reverse());
        const r = makeReproducible(t, EPOCH);
        const again = makeReproducible(r.tree, EPOCH);
        const other = makeReproducible(shuffled, EPOCH);
        for (const x of [again, other]) {
          assert.deepEqual(x.entries, r.entries);
          assert.deepEqual([...x.inodes], [...r.inodes]);
        }
        for (const e of r.entries) assert.ok(e.mtime <= EPOCH);
      }),
    );
  });

  it('refuses an epoch that is not whole seconds every format stores', () => {
    for (const epoch of [-1, 1.5, 2 ** 32, Number.NaN])
      assert.throws(
        () => makeReproducible(newTree(), epoch),
        kjxError('USAGE', /SOURCE_DATE_EPOCH|epoch/, String(epoch)),
      );
    assert.equal(makeReproducible(newTree(), 2 ** 32 - 1).epoch, 2 ** 32 - 1);
  });
});
