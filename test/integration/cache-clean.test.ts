/**
 * After `kjx cache clean`, what was removed comes back when it is needed: a build from
 * an emptied stage cache gives the same bytes, and `kjx run` boots again after the
 * unpacked kernel and initramfs were removed. Real build, real QEMU.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '../../src/util/hash.js';
import { coldCacheWithDebs, removeAll, runKjx, workspace } from '../helpers/kjx.js';

describe('kjx cache clean, then build and run again', () => {
  let ws: string;
  let cache: string;
  let state: string;
  const kjx = (...args: string[]) =>
    runKjx(args, { cwd: ws, cache, env: { KJX_STATE_DIR: state }, timeoutMs: 600_000 });
  const entries = (kind: string): number => {
    const r = kjx('cache', 'list', '--json');
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { kinds: { kind: string; entries: number }[] }).kinds.find(
      (k) => k.kind === kind,
    )!.entries;
  };

  before(() => {
    ws = workspace('cache-clean');
    cache = coldCacheWithDebs();
    state = join(ws, '.state');
  });
  after(() => removeAll(ws, cache));

  test('a build after the stages and blobs were removed gives the same image', () => {
    let r = kjx('build');
    assert.equal(r.code, 0, r.stderr);
    const image = sha256(readFileSync(join(ws, 'dist', 'initramfs.cpio.gz')));
    assert.ok(entries('stages') > 0 && entries('blobs') > 0);

    r = kjx('cache', 'clean', 'stages', 'blobs', 'specs', 'valid', 'records');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^removed stages: \d+ entries, /m);
    assert.equal(entries('stages'), 0);
    assert.equal(entries('blobs'), 0);
    assert.ok(entries('debs') > 0, 'the packages were not named');

    r = kjx('build', '-o', 'dist2');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(readFileSync(join(ws, 'dist2', 'initramfs.cpio.gz'))), image);
    assert.ok(entries('stages') > 0, 'the stages were computed and kept again');
  });

  test('kjx run boots after the unpacked kernels and initramfs images were removed', () => {
    let r = kjx('run', '--', 'echo', 'first');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(entries('kernels') > 0 && entries('initrds') > 0);
    r = kjx('cache', 'clean', 'kernels', 'initrds', 'snapshots');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(join(cache, 'kernels')), []);
    r = kjx('run', '--', 'echo', 'again');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^again$/m);
    assert.ok(entries('kernels') > 0, 'unpacked again');
  });
});
