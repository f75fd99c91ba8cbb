/**
 * The no-op build check (src/pipeline/stage.ts artifactsIntact): artifacts whose file
 * status is the one recorded when they were hashed are taken as they are, without
 * reading them; any change to their bytes (in place, same size, with the mtime set
 * back, or a copy over them) moves the stamp, so they are hashed and found changed.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { artifactsIntact, type BuildRecord } from '../../src/pipeline/stage.js';
import { fileStamp } from '../../src/util/file-stamp.js';
import { sha256 } from '../../src/util/hash.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function built(bytes = 'kernel bytes\n'): { path: string; rec: BuildRecord } {
  const d = mkdtempSync(join(tmpdir(), 'kjx-intact-'));
  dirs.push(d);
  const path = join(d, 'vmlinuz');
  writeFileSync(path, bytes);
  const rec: BuildRecord = {
    key: 'k',
    buildId: 'b',
    kernelVersion: 'v',
    artifacts: [{ name: 'vmlinuz', path, size: bytes.length, sha256: sha256(Buffer.from(bytes)) }],
    stamps: { [path]: fileStamp(path) },
  };
  return { path, rec };
}

test('an artifact with its recorded stamp is not read again (a wrong recorded sum goes unnoticed)', () => {
  const { rec } = built();
  assert.deepEqual(artifactsIntact(rec), { intact: true, restamp: false });
  rec.artifacts[0]!.sha256 = '0'.repeat(64);
  assert.deepEqual(artifactsIntact(rec), { intact: true, restamp: false });
});

test('bytes changed in place, same size, with the mtime set back, are found changed', () => {
  const { path, rec } = built();
  const st = statSync(path);
  writeFileSync(path, 'KERNEL bytes\n');
  utimesSync(path, st.atime, st.mtime);
  assert.deepEqual(artifactsIntact(rec), { intact: false, restamp: false });
});

test('a copy over the artifact with its times kept is found changed', () => {
  const { path, rec } = built();
  const other = `${path}.other`;
  writeFileSync(other, 'KERNEL bytes\n');
  const st = statSync(path);
  utimesSync(other, st.atime, st.mtime);
  copyFileSync(other, path);
  assert.deepEqual(artifactsIntact(rec), { intact: false, restamp: false });
});

test('a touched artifact and a record without stamps are hashed, found intact and restamped', () => {
  const { path, rec } = built();
  utimesSync(path, new Date(), new Date(Date.now() + 5000));
  assert.deepEqual(artifactsIntact(rec), { intact: true, restamp: true });
  const { rec: old } = built();
  delete old.stamps;
  assert.deepEqual(artifactsIntact(old), { intact: true, restamp: true });
});

test('a missing artifact is not intact', () => {
  const { path, rec } = built();
  rmSync(path);
  assert.deepEqual(artifactsIntact(rec), { intact: false, restamp: false });
});
