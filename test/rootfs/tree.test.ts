/**
 * The Tree's merge rules, above all the one that keeps writers from following
 * links: no merged tree holds an entry below a symlink, a file or any other
 * non-directory, whichever layer each comes from.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  addEntry,
  type EntrySource,
  ensureParents,
  mergeTrees,
  mk,
  newTree,
  parentOf,
  refuseBelowNonDirs,
  type Tree,
  type TreeEntry,
} from '../../src/rootfs/tree.js';
import type { KjxError } from '../../src/util/errors.js';
import { assertKjxError } from '../helpers/kjx-error.js';

const PKG: EntrySource = { kind: 'deb', package: 'evil', version: '1.0' };
const LINK_AT: EntrySource = { kind: 'input', ref: 'files[0]', at: 'files[0] at kjx.yaml:10:5' };
const FILE_AT: EntrySource = { kind: 'input', ref: 'files[1]', at: 'files[1] at kjx.yaml:13:5' };

function layer(...entries: TreeEntry[]): Tree {
  const t = newTree();
  for (const e of entries) addEntry(t, e);
  return t;
}

/** Run `f`, which must throw TREE_CONFLICT; returns the error. */
function conflict(f: () => unknown): KjxError {
  try {
    f();
  } catch (e) {
    assertKjxError(e, 'TREE_CONFLICT');
    return e;
  }
  assert.fail('expected TREE_CONFLICT');
}

describe('entries below a non-directory', () => {
  it('a symlink from one layer and an entry below it from another: refused, naming both and their positions', () => {
    const e = conflict(() =>
      mergeTrees([
        layer(mk.symlink('/opt/evil', '/tmp/outside', LINK_AT)),
        layer(mk.file('/opt/evil/x', 'owned', FILE_AT)),
      ]),
    );
    assert.equal(
      e.message,
      '/opt/evil/x (files[1] at kjx.yaml:13:5) lies below /opt/evil, a symlink to /tmp/outside (files[0] at kjx.yaml:10:5)',
    );
    assert.match(
      e.hint ?? '',
      /never writes through a symlink.*\(\/tmp\/outside\/x\).*make \/opt\/evil a directory/,
    );
  });

  it('in either order of the layers, and within one layer', () => {
    const link = mk.symlink('/opt/link', 'real', PKG);
    const below = mk.file('/opt/link/ok.txt', 'ok', FILE_AT);
    conflict(() => mergeTrees([layer(below), layer(link)]));
    conflict(() => mergeTrees([layer(link, below)]));
  });

  it('the hint names where a relative link leads inside the tree', () => {
    const e = conflict(() =>
      mergeTrees([
        layer(mk.symlink('/opt/link', 'real', LINK_AT), mk.file('/opt/link/ok.txt', 'ok', FILE_AT)),
      ]),
    );
    assert.match(e.hint ?? '', /\(\/opt\/real\/ok\.txt\)/);
    const climbing = conflict(() =>
      mergeTrees([layer(mk.symlink('/opt/up', '../../../..', LINK_AT), mk.file('/opt/up/x', 'x', FILE_AT))]),
    );
    assert.match(climbing.hint ?? '', /give the entry the path the link leads to, or make/);
  });

  it('a deep entry whose missing parents lie below the link is refused too', () => {
    const e = conflict(() =>
      mergeTrees([
        layer(mk.symlink('/opt/evil', '/etc', PKG)),
        layer(mk.file('/opt/evil/a/b/c', 'x', FILE_AT)),
      ]),
    );
    assert.match(
      e.message,
      /^\/opt\/evil\/a\/b\/c \(files\[1\].*lies below \/opt\/evil, a symlink to \/etc \(package evil 1\.0\)$/,
    );
  });

  it('a file (or device) as a parent is refused, and every such entry is listed', () => {
    const e = conflict(() =>
      mergeTrees([
        layer(mk.file('/etc/motd', 'hi', PKG), mk.char('/dev/null', 1, 3, PKG)),
        layer(mk.file('/etc/motd/x', 'x', FILE_AT), mk.file('/dev/null/y', 'y', FILE_AT)),
      ]),
    );
    assert.match(e.message, /^\/dev\/null\/y .* lies below \/dev\/null, a char, not a directory/);
    assert.equal(e.details.length, 2);
    assert.match(e.details[1]!, /^\/etc\/motd\/x .* lies below \/etc\/motd, a file, not a directory/);
  });

  it('a later layer that turns the symlink into a directory with override is accepted', () => {
    const t = mergeTrees([
      layer(mk.symlink('/var/run', '../run', PKG)),
      layer(mk.file('/var/run/x', 'x', FILE_AT)),
      layer({ ...mk.dir('/var/run', FILE_AT), override: true }),
    ]);
    assert.equal(t.get('/var/run')?.type, 'dir');
  });

  it('ensureParents refuses instead of making directories below a link', () => {
    const t = newTree();
    t.set('/opt/evil', mk.symlink('/opt/evil', '/tmp', PKG));
    t.set('/opt/evil/a/b', mk.file('/opt/evil/a/b', 'x', FILE_AT));
    conflict(() => ensureParents(t));
    assert.equal(t.has('/opt/evil/a'), false, 'no directory made below the link');
  });

  it('links to elsewhere and files next to links are fine', () => {
    const t = mergeTrees([
      layer(mk.dir('/opt', PKG), mk.dir('/opt/real', PKG), mk.symlink('/opt/link', 'real', PKG)),
      layer(mk.file('/opt/real/ok.txt', 'ok', FILE_AT), mk.file('/opt/linkx', 'x', FILE_AT)),
    ]);
    ensureParents(t);
    refuseBelowNonDirs(t);
    assert.equal(t.get('/opt/real/ok.txt')?.type, 'file');
  });
});

// --- property: no merged tree holds an entry below a non-directory ---------------

const segment = fc.constantFrom('a', 'b', 'c');
const entryArb = fc.record({
  path: fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`),
  kind: fc.constantFrom('dir', 'file', 'symlink', 'fifo'),
  target: fc.constantFrom('a', '../b', '/c', '/tmp/outside', '..'),
});
type Gen = typeof entryArb extends fc.Arbitrary<infer T> ? T : never;

function entryOf(g: Gen, n: number): TreeEntry {
  const source: EntrySource = { kind: 'input', ref: `layer ${n}` };
  // every entry overrides, so same-path conflicts never hide the rule under test
  const e =
    g.kind === 'dir'
      ? mk.dir(g.path, source)
      : g.kind === 'file'
        ? mk.file(g.path, g.path, source)
        : g.kind === 'symlink'
          ? mk.symlink(g.path, g.target, source)
          : ({ type: 'fifo', path: g.path, mode: 0o644, uid: 0, gid: 0, mtime: 0, source } as TreeEntry);
  return { ...e, override: true };
}

/** The merge without the rule: the last layer's entry at each path wins. */
function naiveMerge(layers: Tree[]): Tree {
  const out = newTree();
  for (const l of layers) for (const e of l.values()) out.set(e.path, e);
  return out;
}

function someEntryBelowNonDir(t: Tree): boolean {
  for (const path of t.keys())
    for (let p = parentOf(path); p !== '/'; p = parentOf(p)) {
      const a = t.get(p);
      if (a && a.type !== 'dir') return true;
    }
  return false;
}

describe('property: merged trees', () => {
  it('no merged tree holds an entry below a non-directory; refused exactly when the layers put one there', () => {
    fc.assert(
      fc.property(fc.array(fc.array(entryArb, { maxLength: 8 }), { minLength: 1, maxLength: 4 }), (gens) => {
        const layers = gens.map((g, n) => layer(...g.map((x) => entryOf(x, n))));
        const bad = someEntryBelowNonDir(naiveMerge(layers));
        let merged: Tree;
        try {
          merged = mergeTrees(layers);
          ensureParents(merged);
        } catch (e) {
          assertKjxError(e, 'TREE_CONFLICT');
          assert.ok(bad, `refused a tree that has no entry below a non-directory: ${(e as Error).message}`);
          return;
        }
        assert.ok(!bad, 'accepted an entry below a non-directory');
        for (const path of merged.keys())
          for (let p = path; p !== '/'; ) {
            p = parentOf(p);
            assert.equal(merged.get(p)?.type, 'dir', `${path}: ancestor ${p} is a directory of the tree`);
          }
      }),
      { numRuns: 500 },
    );
  });
});
