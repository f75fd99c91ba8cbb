/**
 * Staging a tree in a host directory (for `mke2fs -d`) never follows a link:
 * neither one the tree holds nor one it finds in the staging directory.
 */
import assert from 'node:assert/strict';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { stageTreeOnHost } from '../../src/image/host-staging.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import {
  type EntrySource,
  ensureParents,
  mk,
  newTree,
  parentOf,
  type Tree,
  type TreeEntry,
} from '../../src/rootfs/tree.js';
import type { ErrorCode } from '../../src/util/errors.js';
import { assertKjxError } from '../helpers/kjx-error.js';

const SRC: EntrySource = { kind: 'generated', by: 'test' };
const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory pair: where the tree is staged, and a victim outside it that must stay empty. */
function dirs(): { stage: string; victim: string } {
  const base = mkdtempSync(join(tmpdir(), 'kjx-staging-'));
  made.push(base);
  const stage = join(base, 'root');
  const victim = join(base, 'victim');
  mkdirSync(stage);
  mkdirSync(victim);
  return { stage, victim };
}

function raw(...entries: TreeEntry[]): Tree {
  const t = newTree();
  for (const e of entries) t.set(e.path, e);
  return t;
}

function throwsCode(f: () => unknown, code: ErrorCode, says: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assertKjxError(e, code, says);
    return true;
  });
}

describe('stageTreeOnHost', () => {
  it('stages directories, files, symlinks and hard links as they are', () => {
    const { stage } = dirs();
    const t = raw(
      mk.dir('/etc', SRC),
      mk.file('/etc/motd', 'hi\n', SRC),
      mk.symlink('/etc/link', '/etc/motd', SRC),
      mk.symlink('/etc/dangling', '../nowhere', SRC),
      { ...mk.file('/etc/hard', '', SRC), type: 'hardlink', target: '/etc/motd' } as TreeEntry,
      mk.char('/etc/null', 1, 3, SRC),
    );
    ensureParents(t, SRC);
    stageTreeOnHost(makeReproducible(t, 0), stage);
    assert.equal(readFileSync(join(stage, 'etc/motd'), 'utf8'), 'hi\n');
    assert.equal(readlinkSync(join(stage, 'etc/link')), '/etc/motd', 'a link is staged, not followed');
    assert.equal(readlinkSync(join(stage, 'etc/dangling')), '../nowhere');
    assert.equal(lstatSync(join(stage, 'etc/hard')).ino, lstatSync(join(stage, 'etc/motd')).ino);
    assert.deepEqual(readdirSync(join(stage, 'etc')).sort(), ['dangling', 'hard', 'link', 'motd']);
  });

  it('a tree with an entry below its own symlink is refused before anything is written', () => {
    const { stage, victim } = dirs();
    const t = raw(
      mk.dir('/opt', SRC),
      mk.symlink('/opt/evil', victim, SRC),
      mk.file('/opt/evil/x', 'owned', SRC),
    );
    throwsCode(
      () => stageTreeOnHost(makeReproducible(t, 0), stage),
      'TREE_CONFLICT',
      /\/opt\/evil\/x .*lies below \/opt\/evil/,
    );
    assert.deepEqual(readdirSync(victim), []);
    assert.deepEqual(readdirSync(stage), []);
  });

  it('a symlink found in the staging directory is never written through', () => {
    const { stage, victim } = dirs();
    symlinkSync(victim, join(stage, 'opt')); // not made by the stager: as if swapped in
    const t = raw(mk.dir('/opt', SRC), mk.file('/opt/x', 'owned', SRC));
    ensureParents(t, SRC);
    throwsCode(
      () => stageTreeOnHost(makeReproducible(t, 0), stage),
      'TREE_INVALID',
      /^\/opt: not staged.*EEXIST/,
    );
    assert.deepEqual(readdirSync(victim), []);
  });

  it('a file name taken by a link in the staging directory is not opened through it', () => {
    const { stage, victim } = dirs();
    symlinkSync(join(victim, 'x'), join(stage, 'x'));
    const t = raw(mk.file('/x', 'owned', SRC));
    ensureParents(t, SRC);
    throwsCode(
      () => stageTreeOnHost(makeReproducible(t, 0), stage),
      'TREE_INVALID',
      /^\/x: not staged.*EEXIST/,
    );
    assert.deepEqual(readdirSync(victim), []);
  });

  it('an entry whose parent is not a directory of the tree is refused', () => {
    const { stage } = dirs();
    throwsCode(
      () => stageTreeOnHost(makeReproducible(raw(mk.file('/a/b', 'x', SRC)), 0), stage),
      'TREE_INVALID',
      /its parent \/a is not a directory of the tree/,
    );
  });

  it('property: nothing lands outside the staging directory, and what is staged is what the tree says', () => {
    const segment = fc.constantFrom('a', 'b', 'c', 'd');
    const leaf = fc.record({
      path: fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => `/${s.join('/')}`),
      kind: fc.constantFrom('file', 'symlink', 'dir'),
      outside: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(leaf, { maxLength: 12 }), (leaves) => {
        const { stage, victim } = dirs();
        const t = newTree();
        for (const l of leaves) {
          if (t.has(l.path)) continue;
          t.set(
            l.path,
            l.kind === 'dir'
              ? mk.dir(l.path, SRC)
              : l.kind === 'file'
                ? mk.file(l.path, l.path, SRC)
                : mk.symlink(l.path, l.outside ? victim : '..', SRC),
          );
        }
        let staged = true;
        try {
          ensureParents(t, SRC);
          stageTreeOnHost(makeReproducible(t, 0), stage);
        } catch (e) {
          assertKjxError(e, 'TREE_CONFLICT');
          staged = false;
        }
        assert.deepEqual(readdirSync(victim), [], 'something was written outside');
        if (!staged) return;
        for (const e of t.values()) {
          if (e.path === '/') continue;
          const st = lstatSync(join(stage, e.path));
          const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
          assert.equal(type, e.type, e.path);
          assert.equal(t.get(parentOf(e.path))?.type, 'dir');
        }
      }),
      { numRuns: 150 },
    );
  });
});
