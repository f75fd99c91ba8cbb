/**
 * sha256Matches: a file is read once, then taken as unchanged while its stat is the
 * one stamped; any write (same size, mtime set back) moves the ctime and reads it again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileStamp, sha256Matches } from '../../src/util/file-stamp.js';
import { sha256 } from '../../src/util/hash.js';

const dir = mkdtempSync(join(tmpdir(), 'kjx-stamp-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a match is stamped, and a stamped file is not read again', () => {
  const f = join(dir, 'a');
  const stamp = join(dir, 'a.stamp');
  writeFileSync(f, 'kernel bytes');
  const sum = sha256(Buffer.from('kernel bytes'));
  assert.equal(sha256Matches(f, sum, stamp), true);
  assert.equal(readFileSync(stamp, 'utf8'), `${sum} ${fileStamp(f)}\n`);
  // a stamp naming another sum for this very stat is believed: proof the bytes were not read
  const other = sha256(Buffer.from('something else'));
  writeFileSync(stamp, `${other} ${fileStamp(f)}\n`);
  assert.equal(sha256Matches(f, other, stamp), true);
});

test('a write of the same size with the mtime set back is read again and refused', () => {
  const f = join(dir, 'b');
  const stamp = join(dir, 'b.stamp');
  writeFileSync(f, 'AAAA');
  const sum = sha256(Buffer.from('AAAA'));
  assert.equal(sha256Matches(f, sum, stamp), true);
  const { atime, mtime } = statSync(f);
  writeFileSync(f, 'AAAB');
  utimesSync(f, atime, mtime);
  assert.equal(sha256Matches(f, sum, stamp), false);
});

test('a missing file or a wrong sum does not match, and nothing is stamped for it', () => {
  const stamp = join(dir, 'c.stamp');
  assert.equal(sha256Matches(join(dir, 'missing'), sha256(Buffer.from('')), stamp), false);
  const f = join(dir, 'c');
  writeFileSync(f, 'x');
  assert.equal(sha256Matches(f, sha256(Buffer.from('y')), stamp), false);
  assert.throws(() => statSync(stamp));
});
