/**
 * Opening artifacts by their bytes: every format kjx writes, built here from a
 * small tree with the same writers and host tools the build uses, and inputs
 * that are no artifact or a damaged one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { writeCpio } from '../../src/image/cpio.js';
import { writeExt4 } from '../../src/image/ext4.js';
import { type GptLayout, PART_TYPES, writeGpt } from '../../src/image/gpt.js';
import { manifestFiles } from '../../src/image/manifest.js';
import { loadArtifact } from '../../src/image/read-artifact.js';
import { writeTar } from '../../src/image/tar-writer.js';
import { factsFromTree } from '../../src/image/tree-diff.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import { type EntrySource, ensureParents, mk, newTree, type Tree } from '../../src/rootfs/tree.js';
import { kjxError } from '../helpers/kjx-error.js';

const SRC: EntrySource = { kind: 'generated', by: 'test' };
const EPOCH = 1_700_000_000;
const MiB = 1024 * 1024;
let dir: string;

function sample(): Tree {
  const t = newTree();
  for (const e of [
    mk.dir('/', SRC),
    mk.file('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', SRC),
    mk.file('/etc/os-release', 'NAME=kjx\nBUILD_ID="0123456789ab"\n', SRC),
    mk.file('/sbin/runit', 'ELF...', SRC, 0o755),
    mk.char('/dev/console', 5, 1, SRC),
    mk.symlink('/bin/sh', 'busybox', SRC),
  ])
    t.set(e.path, e);
  ensureParents(t, SRC);
  return t;
}

const expectErr = kjxError;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kjx-read-'));
  const cpio = writeCpio(makeReproducible(sample(), EPOCH));
  writeFileSync(join(dir, 'initramfs.cpio'), cpio);
  writeFileSync(join(dir, 'initramfs.cpio.gz'), gzipSync(cpio));
  writeFileSync(join(dir, 'rootfs.tar'), writeTar(makeReproducible(sample(), EPOCH)));
  writeFileSync(join(dir, 'rootfs.tar.gz'), gzipSync(writeTar(makeReproducible(sample(), EPOCH))));
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify({ name: 'kjx', version: '1', buildId: '0123456789ab', files: manifestFiles(sample()) }),
  );
  mkdirSync(join(dir, 'dist'));
  writeFileSync(join(dir, 'dist', 'initramfs.cpio.gz'), gzipSync(cpio));

  // a GPT disk: one ext4 partition at 1 MiB
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, '');
  truncateSync(disk, 40 * MiB);
  await writeExt4({
    image: disk,
    offset: MiB,
    size: 32 * MiB,
    root: makeReproducible(sample(), EPOCH),
    uuid: '0a0b0c0d-1111-4222-8333-444455556666',
    hashSeed: '0a0b0c0d-1111-4222-8333-444455556667',
    label: 'kjx-root',
    workDir: join(dir, 'work'),
  });
  const layout: GptLayout = {
    diskGuid: '01234567-89ab-4cde-8f01-23456789abcd',
    sectors: (40 * MiB) / 512,
    partitions: [
      {
        type: PART_TYPES.rootX86_64,
        guid: '11111111-2222-4333-8444-555555555555',
        firstLba: 2048,
        lastLba: 2048 + (32 * MiB) / 512 - 1,
        attributes: 0n,
        name: 'kjx-root',
      },
    ],
  };
  const { head, tail } = writeGpt(layout);
  const fd = openSync(disk, 'r+');
  writeSync(fd, head, 0, head.length, 0);
  writeSync(fd, tail, 0, tail.length, 40 * MiB - tail.length);
  closeSync(fd);
  const conv = spawnSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', disk, join(dir, 'disk.qcow2')]);
  assert.equal(conv.status, 0, String(conv.stderr));

  // an ISO with the initramfs where kjx puts it
  mkdirSync(join(dir, 'iso', 'boot'), { recursive: true });
  writeFileSync(join(dir, 'iso', 'boot', 'initramfs.cpio.gz'), gzipSync(cpio));
  const x = spawnSync('xorriso', ['-as', 'mkisofs', '-o', join(dir, 'image.iso'), '-r', join(dir, 'iso')]);
  assert.equal(x.status, 0, String(x.stderr));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('loadArtifact', () => {
  for (const [name, format, compression] of [
    ['initramfs.cpio', 'cpio', 'none'],
    ['initramfs.cpio.gz', 'cpio', 'gzip'],
    ['rootfs.tar', 'tar', 'none'],
    ['rootfs.tar.gz', 'tar', 'gzip'],
    ['disk.img', 'raw', undefined],
    ['disk.qcow2', 'qcow2', undefined],
    ['image.iso', 'iso', undefined],
    ['dist', 'cpio', 'gzip'],
  ] as const) {
    test(`${name}: ${format}, the same files as the tree written`, async () => {
      const a = await loadArtifact(join(dir, name));
      assert.equal(a.format, format);
      assert.equal(a.compression, compression);
      assert.equal(a.buildId, '0123456789ab');
      const tree = a.tree!;
      tree.delete('/lost+found');
      assert.deepEqual([...factsFromTree(tree).values()], [...factsFromTree(sample()).values()]);
    });
  }

  test('a disk reports its partitions and root file system', async () => {
    const a = await loadArtifact(join(dir, 'disk.qcow2'));
    const d = a.details as {
      partitionTable: string;
      root: { label: string; partition: number };
      imageFormat: string;
    };
    assert.equal(d.partitionTable, 'gpt');
    assert.deepEqual([d.root.label, d.root.partition], ['kjx-root', 1]);
    assert.equal(d.imageFormat, 'qcow2');
  });

  test('a manifest gives the file list without contents', async () => {
    const a = await loadArtifact(join(dir, 'manifest.json'));
    assert.equal(a.format, 'manifest');
    assert.equal(a.tree, undefined);
    assert.equal(a.manifestFiles?.length, sample().size);
  });

  test('unknown formats are ARTIFACT_UNKNOWN', async () => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'just some text\n'.repeat(100));
    await assert.rejects(loadArtifact(text), expectErr('ARTIFACT_UNKNOWN', /not in a format kjx reads/));
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    await assert.rejects(loadArtifact(empty), expectErr('ARTIFACT_UNKNOWN', /empty/));
    const json = join(dir, 'other.json');
    writeFileSync(json, '{"hello": 1}');
    await assert.rejects(loadArtifact(json), expectErr('ARTIFACT_UNKNOWN', /not a kjx manifest/));
    await assert.rejects(loadArtifact(join(dir, 'missing')), expectErr('USAGE', /does not exist/));
  });

  test('a truncated tar is ARTIFACT_INVALID', async () => {
    const cut = join(dir, 'cut.tar');
    writeFileSync(cut, readFileSync(join(dir, 'rootfs.tar')).subarray(0, 1500));
    await assert.rejects(loadArtifact(cut), expectErr('ARTIFACT_INVALID', /cut\.tar/));
  });

  test('a truncated ISO is ARTIFACT_INVALID', async () => {
    const cut = join(dir, 'cut.iso');
    const iso = readFileSync(join(dir, 'image.iso'));
    writeFileSync(cut, iso.subarray(0, iso.length - 100 * 1024));
    await assert.rejects(loadArtifact(cut), expectErr('ARTIFACT_INVALID', /truncated/));
  });

  test('a disk whose partition table is corrupt is ARTIFACT_INVALID', async () => {
    const bad = join(dir, 'bad.img');
    const data = readFileSync(join(dir, 'disk.img'));
    data.fill(0xee, 512, 1024); // primary header
    data.fill(0xee, data.length - 512); // backup header
    writeFileSync(bad, data);
    await assert.rejects(loadArtifact(bad), expectErr('ARTIFACT_INVALID', /corrupt GPT/));
  });

  test('a corrupt qcow2 is ARTIFACT_INVALID, with what qemu-img said', async () => {
    const bad = join(dir, 'bad.qcow2');
    const q = readFileSync(join(dir, 'disk.qcow2'));
    writeFileSync(bad, q.subarray(0, 1024));
    await assert.rejects(
      loadArtifact(bad),
      expectErr('ARTIFACT_INVALID', /qemu-img cannot read it as qcow2/),
    );
  });
});
