/**
 * Our ISO 9660 + Rock Ridge reader against images xorriso writes, and against
 * truncated and damaged ones.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bufferSource } from '../../src/image/byte-source.js';
import { isIso9660, readIso9660 } from '../../src/image/iso9660.js';
import { kjxError } from '../helpers/kjx-error.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const DEEP = Array.from({ length: 10 }, (_, i) => `level${i}`).join('/');
const LONG = `a-file-name-much-longer-than-iso-9660-allows-${'x'.repeat(150)}.txt`;
const BIG = Buffer.alloc(3 * 1024 * 1024 + 7, 0x5a);

let iso: Buffer;

function xorriso(root: string, out: string, extra: string[] = []): void {
  const r = spawnSync(
    'xorriso',
    ['-as', 'mkisofs', '-o', out, '-R', '-J', '-V', 'KJX_TEST', ...extra, root],
    { encoding: 'utf8', env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } },
  );
  assert.equal(r.status, 0, r.stderr);
}

before(() => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-iso-'));
  dirs.push(dir);
  const root = join(dir, 'root');
  mkdirSync(join(root, 'boot'), { recursive: true });
  writeFileSync(join(root, 'boot', 'initramfs.cpio.gz'), 'not really');
  writeFileSync(join(root, 'boot', 'vmlinuz'), BIG);
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, LONG), 'long name');
  mkdirSync(join(root, DEEP), { recursive: true });
  writeFileSync(join(root, DEEP, 'bottom.txt'), 'deep');
  symlinkSync('boot/vmlinuz', join(root, 'kernel'));
  symlinkSync('/etc/absolute/target', join(root, 'abs'));
  writeFileSync(join(root, 'script.sh'), '#!/bin/sh\n');
  chmodSync(join(root, 'script.sh'), 0o750);
  const out = join(dir, 'test.iso');
  xorriso(root, out);
  iso = readFileSync(out);
});

describe('readIso9660', () => {
  test('names, types, modes, link targets and contents come through Rock Ridge', () => {
    const { info, tree } = readIso9660(bufferSource(iso, 'test.iso'));
    assert.equal(info.volumeId, 'KJX_TEST');
    assert.equal(info.rockRidge, true);
    assert.equal(info.joliet, true);
    const vmlinuz = tree.get('/boot/vmlinuz');
    assert.ok(vmlinuz?.type === 'file' && vmlinuz.data.equals(BIG), 'vmlinuz content');
    const empty = tree.get('/empty');
    assert.ok(empty?.type === 'file' && empty.data.length === 0);
    assert.ok(tree.has(`/${LONG}`), 'a long name');
    const bottom = tree.get(`/${DEEP}/bottom.txt`);
    assert.ok(bottom?.type === 'file' && bottom.data.toString() === 'deep', 'a file ten directories down');
    assert.deepEqual(
      [tree.get('/kernel')?.type, (tree.get('/kernel') as { target: string }).target],
      ['symlink', 'boot/vmlinuz'],
    );
    assert.equal((tree.get('/abs') as { target: string }).target, '/etc/absolute/target');
    assert.equal(tree.get('/script.sh')?.mode, 0o750);
    assert.equal(tree.get('/boot')?.type, 'dir');
    assert.ok(![...tree.keys()].some((p) => /rr_moved/i.test(p)), 'relocated directories stay hidden');
  });

  test('a truncated ISO is ARTIFACT_INVALID saying so', () => {
    const cut = iso.subarray(0, Math.floor(iso.length / 2));
    assert.equal(isIso9660(bufferSource(cut, 'cut.iso')), true);
    assert.throws(() => readIso9660(bufferSource(cut, 'cut.iso')), kjxError('ARTIFACT_INVALID', /truncated/));
  });

  test('a directory record pointing past the end is ARTIFACT_INVALID', () => {
    const bad = Buffer.from(iso);
    // the root directory record in the primary volume descriptor: extent -> far away
    const pvd = 16 * 2048;
    bad.writeUInt32LE(0x00ffffff, pvd + 156 + 2);
    bad.writeUInt32BE(0x00ffffff, pvd + 156 + 6);
    assert.throws(
      () => readIso9660(bufferSource(bad, 'bad.iso')),
      kjxError('ARTIFACT_INVALID', /past the end/),
    );
  });

  test('not an ISO at all', () => {
    const zeros = Buffer.alloc(64 * 1024);
    assert.equal(isIso9660(bufferSource(zeros, 'zeros')), false);
    assert.throws(() => readIso9660(bufferSource(zeros, 'zeros')), kjxError('ARTIFACT_INVALID'));
  });
});
