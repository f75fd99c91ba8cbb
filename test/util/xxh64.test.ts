import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { xxh64, xxh64Hex } from '../../src/util/xxh64.js';
import { needsTool } from '../helpers/prereq.js';

describe('xxh64', () => {
  test('known values (seed 0)', () => {
    assert.equal(xxh64Hex(new Uint8Array(0)), 'ef46db3751d8e999');
    assert.equal(xxh64Hex(Buffer.from('a')), 'd24ec4f1a98c6e5b');
    assert.equal(xxh64Hex(Buffer.from('abc')), '44bc2cf5ad770999');
    assert.equal(xxh64Hex(Buffer.from('Nobody inspects the spammish repetition')), 'fbcea83c8a378bf1');
  });

  test('a view into a larger buffer hashes only its bytes', () => {
    const big = Buffer.from('xxabcxx');
    assert.deepEqual(xxh64(big.subarray(2, 5)), xxh64(Buffer.from('abc')));
  });

  test('agrees with the checksum `zstd --check` writes, across every tail length', {
    skip: needsTool('zstd'),
  }, () => {
    // every remainder of the 32-byte stripes, 8-byte words and 4-byte word, and more than one stripe
    for (const n of [0, 1, 3, 4, 5, 7, 8, 9, 12, 15, 31, 32, 33, 36, 39, 40, 63, 64, 65, 1000, 70_001]) {
      const data = randomBytes(n);
      const frame = execFileSync('zstd', ['-q', '-c', '--check'], { input: data });
      assert.equal(xxh64(data)[1], frame.readUInt32LE(frame.length - 4), `${n} bytes`);
    }
  });
});
