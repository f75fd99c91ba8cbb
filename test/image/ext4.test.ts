/**
 * The ext4 writer (mke2fs -d + a debugfs script) and our ext4 reader, checked
 * against each other and against e2fsprogs' own view (e2fsck, debugfs).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { bufferSource, sliceSource } from '../../src/image/byte-source.js';
import { debugfsScript, writeExt4 } from '../../src/image/ext4.js';
import { isExt4, readExt4 } from '../../src/image/ext4-reader.js';
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
import { kjxError } from '../helpers/kjx-error.js';

const SRC: EntrySource = { kind: 'generated', by: 'test' };
const EPOCH = 1_700_000_000;
const MiB = 1024 * 1024;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'kjx-ext4-'));
  dirs.push(d);
  return d;
}

function treeOf(entries: TreeEntry[]): Tree {
  const t = newTree();
  for (const e of entries) t.set(e.path, e);
  ensureParents(t, SRC);
  return t;
}

const BIG = randomBytes(5 * MiB + 123);
const BUSYBOX = randomBytes(9000);

function sample(): Tree {
  const entries: TreeEntry[] = [
    mk.dir('/', SRC),
    mk.file('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', SRC),
    mk.file('/etc/shadow', 'root:*:19000::::::\n', SRC, 0o600),
    mk.file('/bin/busybox', BUSYBOX, SRC, 0o4755),
    mk.symlink('/bin/sh', 'busybox', SRC),
    mk.symlink('/lib/long', `/${'l'.repeat(100)}`, SRC),
    mk.char('/dev/console', 5, 1, SRC),
    {
      type: 'block',
      path: '/dev/vda3',
      major: 254,
      minor: 3,
      mode: 0o660,
      uid: 0,
      gid: 6,
      mtime: 0,
      source: SRC,
    },
    {
      type: 'char',
      path: '/dev/big',
      major: 300,
      minor: 70000,
      mode: 0o600,
      uid: 0,
      gid: 0,
      mtime: 0,
      source: SRC,
    },
    { type: 'fifo', path: '/run/fifo', mode: 0o620, uid: 0, gid: 5, mtime: 0, source: SRC },
    mk.dir('/tmp', SRC, 0o1777),
    mk.dir('/root', SRC, 0o700),
    { ...mk.file('/home/kjx/notes', 'hi\n', SRC, 0o640), uid: 1000, gid: 1000, mtime: 1_600_000_000 },
    { ...mk.file('/srv/high-ids', 'x', SRC), uid: 70_000, gid: 80_000 },
    { ...mk.file('/srv/unreadable', 'secret', SRC, 0o000) },
    { ...mk.dir('/srv/locked', SRC, 0o000) },
    mk.file('/srv/locked/inside', 'in', SRC),
    mk.file('/data/big.bin', BIG, SRC),
    mk.file('/data/empty', '', SRC),
    mk.file('/sp ace/"quoted" \'name\'', 'odd name', SRC),
    {
      type: 'hardlink',
      path: '/bin/ash',
      target: '/bin/busybox',
      mode: 0o4755,
      uid: 0,
      gid: 0,
      mtime: 0,
      source: SRC,
    },
    { ...mk.file('/future', 'x', SRC), mtime: EPOCH + 99 },
  ];
  for (let i = 0; i < 600; i++)
    entries.push(mk.file(`/many/file-${String(i).padStart(4, '0')}`, `${i}\n`, SRC));
  return treeOf(entries);
}

async function build(t: Tree, size = 64 * MiB, offset = 0): Promise<string> {
  const dir = tmp();
  const image = join(dir, 'fs.img');
  writeFileSync(image, '');
  truncateSync(image, offset + size);
  await writeExt4({
    image,
    offset,
    size,
    root: makeReproducible(t, EPOCH),
    uuid: '0a0b0c0d-1111-4222-8333-444455556666',
    hashSeed: '0a0b0c0d-1111-4222-8333-444455556667',
    label: 'kjx-root',
    workDir: join(dir, 'work'),
  });
  return image;
}

function facts(t: Tree) {
  return [...factsFromTree(t).values()];
}

describe('writeExt4 and readExt4', () => {
  test('what we read back is what we wrote: types, modes, owners, devices, contents, links', async () => {
    const t = sample();
    const image = await build(t);
    const { info, tree } = readExt4(bufferSource(readFileSync(image), 'fs.img'), SRC);
    assert.equal(info.label, 'kjx-root');
    assert.equal(info.uuid, '0a0b0c0d-1111-4222-8333-444455556666');
    assert.equal(tree.get('/lost+found')?.type, 'dir');
    tree.delete('/lost+found');
    assert.deepEqual(facts(tree), facts(t));
    assert.equal(tree.get('/future')!.mtime, EPOCH, 'mtime clamped to the epoch');
    assert.equal(tree.get('/home/kjx/notes')!.mtime, 1_600_000_000);
  });

  test('e2fsck finds the file system clean, and debugfs sees root-owned /etc/passwd and /dev/console', async () => {
    const image = await build(sample());
    const fsck = spawnSync('e2fsck', ['-fn', image], { encoding: 'utf8' });
    assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
    const stat = (p: string) => spawnSync('debugfs', ['-R', `stat ${p}`, image], { encoding: 'utf8' }).stdout;
    assert.match(stat('/etc/passwd'), /Mode: {2}0644/);
    assert.match(stat('/etc/passwd'), /User: {5}0 {3}Group: {5}0/);
    assert.match(stat('/dev/console'), /Type: character special/);
    assert.match(stat('/dev/console'), /Device major\/minor number: 05:01/);
    assert.match(stat('/srv/high-ids'), /User: 70000 {3}Group: 80000/);
  });

  test('reproducible: two writes give the same bytes', async () => {
    const a = readFileSync(await build(sample()));
    const b = readFileSync(await build(sample()));
    assert.ok(a.equals(b), 'the two images differ');
  });

  test('written at an offset inside a larger image (a partition)', async () => {
    const t = treeOf([mk.file('/hello', 'world\n', SRC)]);
    const image = await build(t, 16 * MiB, 3 * MiB);
    const all = bufferSource(readFileSync(image), 'disk.img');
    assert.equal(isExt4(all), false);
    const part = sliceSource(all, 3 * MiB, 16 * MiB, 'part');
    const { tree } = readExt4(part, SRC);
    const hello = tree.get('/hello');
    assert.equal(hello?.type === 'file' && hello.data.toString(), 'world\n');
  });

  test('too small a partition is DISK_TOO_SMALL', async () => {
    const t = treeOf([mk.file('/big', randomBytes(6 * MiB), SRC)]);
    await assert.rejects(build(t, 4 * MiB), kjxError('DISK_TOO_SMALL'));
  });

  test('a truncated image is ARTIFACT_INVALID, not a crash', async () => {
    const image = await build(treeOf([mk.file('/a', 'a', SRC)]), 16 * MiB);
    const cut = readFileSync(image).subarray(0, 2 * MiB);
    assert.throws(
      () => readExt4(bufferSource(cut, 'cut.img'), SRC),
      kjxError('ARTIFACT_INVALID', /truncated/),
    );
  });

  test('garbage where inodes should be is ARTIFACT_INVALID', async () => {
    const image = await build(treeOf([mk.file('/a', 'a', SRC)]), 16 * MiB);
    const data = readFileSync(image);
    // wipe the inode table of group 0 (found through the group descriptor)
    const table = data.readUInt32LE(4096 + 8);
    randomBytes(64 * 1024).copy(data, table * 4096);
    assert.throws(() => readExt4(bufferSource(data, 'bad.img'), SRC), kjxError('ARTIFACT_INVALID'));
  });
});

describe('debugfsScript', () => {
  test('devices and fifos are made in their directory, then every inode gets mode, owner and times', () => {
    const t = treeOf([
      mk.char('/dev/console', 5, 1, SRC),
      { ...mk.file('/a "b"', 'x', SRC, 0o755), uid: 7, mtime: 5 },
    ]);
    const s = debugfsScript(makeReproducible(t, EPOCH)).split('\n');
    assert.deepEqual(s.slice(0, 3), ['cd "/dev"', 'mknod "console" c 5 1', 'cd /']);
    assert.ok(s.includes('sif "/a ""b""" mode 0100755'));
    assert.ok(s.includes('sif "/a ""b""" uid 7'));
    assert.ok(s.includes('sif "/a ""b""" mtime @5'));
    assert.ok(s.includes('sif "/dev/console" mode 020600'));
  });

  test('a newline in a path is refused', () => {
    const t = treeOf([mk.file('/bad\nname', 'x', SRC)]);
    assert.throws(() => debugfsScript(makeReproducible(t, EPOCH)), kjxError('TREE_INVALID'));
  });
});

test('the image file stays sparse where nothing was written', async () => {
  const image = await build(treeOf([mk.file('/a', 'a', SRC)]), 64 * MiB);
  const kib = spawnSync('du', ['-k', image], { encoding: 'utf8' }).stdout.split('\t')[0];
  assert.ok(Number(kib) < 40 * 1024, `uses ${kib} KiB of 64 MiB`);
});
