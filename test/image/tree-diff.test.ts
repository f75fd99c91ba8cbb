import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manifestFiles } from '../../src/image/manifest.js';
import { describeChange, diffFacts, factsFromManifest, factsFromTree } from '../../src/image/tree-diff.js';
import { type EntrySource, mk, newTree, type Tree, type TreeEntry } from '../../src/rootfs/tree.js';

const SRC: EntrySource = { kind: 'generated', by: 'test' };

function treeOf(entries: TreeEntry[]): Tree {
  const t = newTree();
  for (const e of entries) t.set(e.path, e);
  return t;
}

const base = (): TreeEntry[] => [
  mk.dir('/', SRC),
  mk.file('/etc/os-release', 'NAME=kjx\nBUILD_ID="aaaaaaaaaaaa"\n', SRC),
  mk.file('/etc/hostname', 'kjx\n', SRC),
  mk.symlink('/bin/sh', 'busybox', SRC),
  mk.char('/dev/console', 5, 1, SRC),
  mk.file('/bin/busybox', 'BB', SRC, 0o755),
];

test('identical trees: no differences', () => {
  const r = diffFacts(factsFromTree(treeOf(base())), factsFromTree(treeOf(base())));
  assert.deepEqual(r, { entries: [], buildIdOnly: [] });
});

test('added, removed and each kind of change', () => {
  const a = treeOf(base());
  const b = treeOf([
    ...base().filter((e) => e.path !== '/etc/hostname'),
    mk.file('/etc/motd', 'hello\n', SRC),
  ]);
  b.set('/bin/sh', mk.symlink('/bin/sh', 'dash', SRC));
  b.set('/dev/console', mk.char('/dev/console', 4, 1, SRC));
  b.set('/bin/busybox', { ...mk.file('/bin/busybox', 'B2', SRC, 0o4755), uid: 1000 });
  const r = diffFacts(factsFromTree(a), factsFromTree(b));
  assert.deepEqual(
    r.entries.map((e) => [e.kind, e.path, e.changes]),
    [
      ['changed', '/bin/busybox', ['content', 'mode', 'owner']],
      ['changed', '/bin/sh', ['target']],
      ['changed', '/dev/console', ['device']],
      ['removed', '/etc/hostname', []],
      ['added', '/etc/motd', []],
    ],
  );
  const bb = r.entries[0]!;
  assert.equal(describeChange('mode', bb.a!, bb.b!), 'mode 0755 -> 04755');
  assert.equal(describeChange('owner', bb.a!, bb.b!), 'owner 0:0 -> 1000:0');
});

test('a type change is reported alone', () => {
  const b = treeOf(base());
  b.set('/etc/hostname', mk.dir('/etc/hostname', SRC));
  const r = diffFacts(factsFromTree(treeOf(base())), factsFromTree(b));
  assert.deepEqual(
    r.entries.map((e) => e.changes),
    [['type']],
  );
});

test('a content change that is only the build id is counted apart', () => {
  const b = treeOf(base());
  b.set('/etc/os-release', mk.file('/etc/os-release', 'NAME=kjx\nBUILD_ID="bbbbbbbbbbbb"\n', SRC));
  const r = diffFacts(factsFromTree(treeOf(base())), factsFromTree(b), {
    sameButBuildId: (p) => p === '/etc/os-release',
  });
  assert.deepEqual(r, { entries: [], buildIdOnly: ['/etc/os-release'] });
});

test('hard links compare equal whichever name the tree made the file', () => {
  const one = treeOf([
    mk.file('/bin/busybox', 'BB', SRC, 0o755),
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
  ]);
  const two = treeOf([
    mk.file('/bin/ash', 'BB', SRC, 0o755),
    {
      type: 'hardlink',
      path: '/bin/busybox',
      target: '/bin/ash',
      mode: 0o755,
      uid: 0,
      gid: 0,
      mtime: 0,
      source: SRC,
    },
  ]);
  assert.deepEqual(diffFacts(factsFromTree(one), factsFromTree(two)).entries, []);
});

test('a manifest gives the same facts as the tree it describes, hard links included', () => {
  const t = treeOf([
    ...base(),
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
  ]);
  assert.deepEqual(factsFromManifest(manifestFiles(t)), factsFromTree(t));
});
