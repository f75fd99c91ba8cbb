import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { writeCpio } from '../../src/image/cpio.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import { mk, newTree } from '../../src/rootfs/tree.js';
import { openCache } from '../../src/sources/cache.js';
import {
  DECOMPRESS_INITRD_MAX,
  directInitrd,
  directInitrdFile,
  directKernel,
} from '../../src/vm/direct-boot.js';
import { bzImage, elfWithNotes, PVH_NOTE } from '../fixtures/bzimage-fixtures.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'kjx-direct-'));
  dirs.push(d);
  return d;
};

describe('direct boot', () => {
  test('a bzImage with a PVH note boots as its vmlinux, unpacked once into the cache', async () => {
    const d = tmp();
    const cache = openCache(join(d, 'cache'));
    const elf = elfWithNotes([PVH_NOTE]);
    const bz = join(d, 'vmlinuz');
    writeFileSync(bz, bzImage(gzipSync(elf)));
    const first = await directKernel(bz, undefined, cache);
    assert.equal(first.pvh, true);
    assert.deepEqual(readFileSync(first.path), elf);
    rmSync(bz); // the second time comes from the cache alone (the sha256 given by the build record)
    const sha = first.path.replace(/.*\/([0-9a-f]{64})\.vmlinux$/, '$1');
    assert.deepEqual(await directKernel(bz, sha, cache), { path: first.path, pvh: true });
  });

  test('a damaged cached vmlinux is unpacked again, never handed to QEMU', async () => {
    const d = tmp();
    const cache = openCache(join(d, 'cache'));
    const elf = elfWithNotes([PVH_NOTE]);
    const bz = join(d, 'vmlinuz');
    writeFileSync(bz, bzImage(gzipSync(elf)));
    const first = await directKernel(bz, undefined, cache);
    const sha = first.path.replace(/.*\/([0-9a-f]{64})\.vmlinux$/, '$1');
    // checked once, so its stamp is kept: the damage must show through it
    assert.deepEqual(await directKernel(bz, sha, cache), { path: first.path, pvh: true });
    assert.ok(existsSync(`${first.path}.stamp`));
    const damaged = Buffer.from(elf);
    damaged[damaged.length - 1] = damaged[damaged.length - 1]! ^ 0xff; // same size, one bit-rotten byte
    writeFileSync(first.path, damaged);
    const again = await directKernel(bz, sha, cache);
    assert.deepEqual(again, { path: first.path, pvh: true });
    assert.deepEqual(readFileSync(again.path), elf, 'the entry was replaced by a fresh unpack');
    rmSync(`${first.path}.sha256`); // an entry without its checksum is not trusted either
    writeFileSync(first.path, damaged);
    assert.deepEqual(readFileSync((await directKernel(bz, sha, cache)).path), elf);
  });

  test('without a PVH note the bzImage boots, and the verdict is remembered', async () => {
    const d = tmp();
    const cache = openCache(join(d, 'cache'));
    const bz = join(d, 'vmlinuz');
    writeFileSync(bz, bzImage(gzipSync(elfWithNotes([]))));
    const r = await directKernel(bz, undefined, cache);
    assert.deepEqual(r, { path: bz, pvh: false, why: 'its vmlinux has no PVH entry point (CONFIG_PVH)' });
    assert.equal(readdirSync(join(cache.root, 'kernels')).filter((n) => n.includes('.no-pvh-')).length, 1);
  });

  test('an unreadable kernel boots as it is and nothing is remembered; KJX_NO_PVH=1 turns it off', async () => {
    const d = tmp();
    const cache = openCache(join(d, 'cache'));
    const bz = join(d, 'vmlinuz');
    writeFileSync(bz, Buffer.alloc(8192));
    const r = await directKernel(bz, undefined, cache);
    assert.equal(r.pvh, false);
    assert.match(r.why ?? '', /no bzImage setup header/);
    assert.equal(existsSync(join(cache.root, 'kernels')), false);
    process.env.KJX_NO_PVH = '1';
    try {
      assert.deepEqual(await directKernel(bz, undefined, cache), {
        path: bz,
        pvh: false,
        why: 'KJX_NO_PVH=1',
      });
    } finally {
      delete process.env.KJX_NO_PVH;
    }
  });

  test('a small compressed initramfs is handed over as its cpio; big or odd ones stay as they are', async () => {
    const t = newTree();
    t.set('/init', mk.file('/init', '#!/bin/sh\n', { kind: 'generated', by: 'test' }, 0o755));
    const cpio = writeCpio(makeReproducible(t, 0));
    assert.deepEqual(await directInitrd(gzipSync(cpio), 'i'), cpio);
    assert.deepEqual(await directInitrd(cpio, 'i'), cpio);
    const notCpio = gzipSync(Buffer.from('hello'));
    assert.deepEqual(await directInitrd(notCpio, 'i'), notCpio);
    const big = Buffer.concat([gzipSync(cpio), Buffer.alloc(DECOMPRESS_INITRD_MAX / 4)]);
    assert.equal(await directInitrd(big, 'i'), big);
  });

  const initTree = () => {
    const t = newTree();
    t.set('/init', mk.file('/init', '#!/bin/sh\n', { kind: 'generated', by: 'test' }, 0o755));
    return writeCpio(makeReproducible(t, 0));
  };

  test('the decompressed initramfs is kept in the cache: inflated once, checked, private', async () => {
    const d = tmp();
    const cache = openCache(join(d, 'cache'));
    const cpio = initTree();
    const image = join(d, 'initramfs.cpio.gz');
    writeFileSync(image, gzipSync(cpio));
    const first = await directInitrdFile(image, undefined, cache);
    assert.match(first, /\/initrds\/[0-9a-f]{64}\.cpio$/);
    assert.deepEqual(readFileSync(first), cpio);
    assert.equal(statSync(first).mode & 0o777, 0o600, 'the image may hold host keys');
    const sha = first.replace(/.*\/([0-9a-f]{64})\.cpio$/, '$1');
    // with the build record's sha256 the image is not even looked at
    rmSync(image);
    assert.equal(await directInitrdFile(image, sha, cache), first);
    // a damaged copy is inflated again, never handed to QEMU
    writeFileSync(image, gzipSync(cpio));
    writeFileSync(first, Buffer.from('tampered'));
    assert.equal(await directInitrdFile(image, sha, cache), first);
    assert.deepEqual(readFileSync(first), cpio);
  });

  test('an initramfs that is a cpio already, or not small, is loaded as it is', async () => {
    const d = tmp();
    const cache = openCache(join(d, 'cache'));
    const plain = join(d, 'initramfs.cpio');
    writeFileSync(plain, initTree());
    assert.equal(await directInitrdFile(plain, undefined, cache), plain);
    assert.equal(await directInitrdFile(plain, undefined, cache), plain, 'remembered, not inflated again');
    assert.ok(readdirSync(join(cache.root, 'initrds')).some((f) => f.endsWith('.as-is')));
    const big = join(d, 'big.cpio.gz');
    writeFileSync(big, Buffer.concat([gzipSync(initTree()), Buffer.alloc(DECOMPRESS_INITRD_MAX / 4)]));
    assert.equal(await directInitrdFile(big, undefined, cache), big);
    assert.equal(existsSync(join(cache.root, 'initrds')), true);
    assert.deepEqual(
      readdirSync(join(cache.root, 'initrds')).filter((f) => f.endsWith('.cpio')),
      [],
      'no copy of either',
    );
  });

  test('a cache that cannot be written boots the compressed image', async () => {
    const d = tmp();
    const cache = openCache(join(d, 'cache'));
    const image = join(d, 'initramfs.cpio.gz');
    writeFileSync(image, gzipSync(initTree()));
    writeFileSync(join(cache.root, 'initrds'), 'a file where the directory would go');
    assert.equal(await directInitrdFile(image, undefined, cache), image);
  });
});
