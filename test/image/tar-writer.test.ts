import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { tarToTree } from '../../src/image/tar-tree.js';
import { writeTar } from '../../src/image/tar-writer.js';
import { factsFromTree } from '../../src/image/tree-diff.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import {
  type EntrySource,
  ensureParents,
  mk,
  newTree,
  type Tree,
  type TreeEntry,
} from '../../src/rootfs/tree.js';
import { parseTar } from '../../src/sources/tar.js';
import { kjxError } from '../helpers/kjx-error.js';

const SRC: EntrySource = { kind: 'generated', by: 'test' };
const EPOCH = 1_700_000_000;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function treeOf(entries: TreeEntry[]): Tree {
  const t = newTree();
  for (const e of entries) t.set(e.path, e);
  ensureParents(t, SRC);
  return t;
}

const LONG_DIR = `/usr/share/${'d'.repeat(90)}/${'e'.repeat(90)}`;
const VERY_LONG = `/opt/${'x'.repeat(120)}/${'y'.repeat(120)}/${'z'.repeat(120)}`;

function sample(): Tree {
  return treeOf([
    mk.dir('/', SRC),
    mk.file('/init', '#!/bin/sh\nexec /sbin/runit\n', SRC, 0o755),
    mk.file('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', SRC),
    { ...mk.file('/etc/shadow', 'root:*:19000::::::\n', SRC, 0o600) },
    mk.symlink('/bin/sh', 'busybox', SRC),
    mk.file('/bin/busybox', Buffer.alloc(70_000, 7), SRC, 0o4755),
    mk.char('/dev/console', 5, 1, SRC),
    {
      type: 'block',
      path: '/dev/vda',
      major: 254,
      minor: 0,
      mode: 0o660,
      uid: 0,
      gid: 6,
      mtime: 0,
      source: SRC,
    },
    { type: 'fifo', path: '/run/initctl', mode: 0o600, uid: 0, gid: 0, mtime: 0, source: SRC },
    { ...mk.dir('/tmp', SRC, 0o1777) },
    { ...mk.file('/home/kjx/.profile', 'export A=1\n', SRC), uid: 1000, gid: 1000, mtime: 1_600_000_000 },
    { ...mk.file('/big-ids', 'x', SRC), uid: 3_000_000, gid: 4_000_000 },
    {
      type: 'hardlink',
      path: '/bin/ash',
      target: '/bin/busybox',
      mode: 0o755,
      uid: 0,
      gid: 0,
      mtime: 0,
      source: SRC,
    },
    mk.file(`${LONG_DIR}/file.txt`, 'long\n', SRC),
    mk.file(`${VERY_LONG}/f`, 'very long\n', SRC),
    mk.symlink('/lib/long-link', `/${'t'.repeat(150)}`, SRC),
    { ...mk.file('/future', 'later', SRC), mtime: EPOCH + 1000 },
  ]);
}

/** What should survive a tar round trip (hard links keep their own path and target). */
function facts(t: Tree) {
  return [...factsFromTree(t).values()].map((f) => ({ ...f }));
}

describe('writeTar', () => {
  test('round trip through our tar reader: types, modes, owners, devices, long names, links', () => {
    const t = sample();
    const back = tarToTree(parseTar(writeTar(makeReproducible(t, EPOCH)), 't.tar'), 't.tar', SRC);
    assert.deepEqual(facts(back), facts(t));
    assert.equal(back.get('/future')!.mtime, EPOCH, 'mtimes are clamped to SOURCE_DATE_EPOCH');
    assert.equal(back.get('/home/kjx/.profile')!.mtime, 1_600_000_000, 'earlier mtimes are kept');
  });

  test('GNU tar lists it: root-owned files, /dev/console c 5,1, setuid busybox, a hard link', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-tar-'));
    dirs.push(dir);
    const file = join(dir, 'rootfs.tar');
    writeFileSync(file, writeTar(makeReproducible(sample(), EPOCH)));
    const r = spawnSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const line = (name: string) =>
      r.stdout.split('\n').find((l) => / \d\d:\d\d (.+?)(?: -> .*| link to .*)?$/.exec(l)?.[1] === name);
    assert.match(line('./etc/passwd') ?? '', /^-rw-r--r-- 0\/0 /);
    assert.match(line('./dev/console') ?? '', /^crw------- 0\/0 +5,1 /);
    // the tree says /bin/ash links to /bin/busybox; the archive names the inode first where it comes first
    assert.match(line('./bin/ash') ?? '', /^-rwsr-xr-x 0\/0 +70000 /);
    assert.match(line('./bin/busybox') ?? '', /^hrwsr-xr-x .* \.\/bin\/busybox link to \.\/bin\/ash$/);
    assert.match(line('./home/kjx/.profile') ?? '', /^-rw-r--r-- 1000\/1000 /);
    assert.match(line('./big-ids') ?? '', / 3000000\/4000000 /);
    assert.ok(r.stdout.includes(`.${VERY_LONG}/f`), 'a path over 255 bytes comes through a pax header');
    assert.ok(r.stdout.includes(`-> /${'t'.repeat(150)}`), 'a long link target comes through a pax header');
  });

  test('deterministic: insertion order does not matter, the archive is whole 10240-byte records', () => {
    const a = sample();
    const b = new Map([...sample()].reverse());
    const ta = writeTar(makeReproducible(a, EPOCH));
    assert.deepEqual(ta, writeTar(makeReproducible(b, EPOCH)));
    assert.equal(ta.length % 10240, 0);
    assert.deepEqual(ta.subarray(ta.length - 1024), Buffer.alloc(1024), 'ends in two zero blocks');
  });

  test('a dangling hard link is TREE_INVALID', () => {
    const t = treeOf([
      {
        type: 'hardlink',
        path: '/a',
        target: '/missing',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        source: SRC,
      },
    ]);
    assert.throws(() => writeTar(makeReproducible(t, EPOCH)), kjxError('TREE_INVALID', /missing/));
  });

  test('property: any tree of files, dirs and symlinks round-trips', () => {
    const seg = fc.stringMatching(/^[a-zA-Z0-9._-]{1,40}$/).filter((s) => s !== '.' && s !== '..');
    const entry = fc.record({
      parts: fc.array(seg, { minLength: 1, maxLength: 6 }),
      kind: fc.constantFrom('file', 'dir', 'symlink'),
      mode: fc.integer({ min: 0, max: 0o7777 }),
      uid: fc.integer({ min: 0, max: 5_000_000 }),
      data: fc.uint8Array({ maxLength: 600 }),
    });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 25 }), (list) => {
        const t = newTree();
        for (const e of list) {
          const path = `/${e.parts.join('/')}`;
          // a later entry may not sit below an earlier non-directory
          if ([...t.values()].some((x) => x.type !== 'dir' && path.startsWith(`${x.path}/`))) continue;
          if ([...t.keys()].some((p) => p.startsWith(`${path}/`)) && e.kind !== 'dir') continue;
          const base = { path, mode: e.mode, uid: e.uid, gid: e.uid, mtime: 0, source: SRC };
          if (e.kind === 'file') t.set(path, { ...base, type: 'file', data: Buffer.from(e.data) });
          else if (e.kind === 'dir') t.set(path, { ...base, type: 'dir' });
          else t.set(path, { ...base, type: 'symlink', target: e.parts.join('_') });
        }
        ensureParents(t, SRC);
        const back = tarToTree(parseTar(writeTar(makeReproducible(t, EPOCH)), 'p.tar'), 'p.tar', SRC);
        assert.deepEqual(facts(back), facts(t));
      }),
      { numRuns: 60 },
    );
  });
});
