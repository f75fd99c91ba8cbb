/**
 * The cache's entries as `kjx cache` sees and removes them: companions grouped with
 * their file, trees measured whole, links never followed, what a live process uses
 * marked in use, and names the cache does not know left out.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cacheTempDir } from '../../src/sources/cache.js';
import { type CacheEntry, cacheEntries, removeEntry } from '../../src/sources/cache-entries.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'kjx-cache-entries-'));
  dirs.push(d);
  return d;
}

function put(root: string, rel: string, data: string | Buffer = 'x'): string {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
  return p;
}

/** A pid no process has: one that has just exited. */
function deadPid(): number {
  const r = spawnSync('true');
  assert.ok(r.pid);
  return r.pid;
}

/** A name as kjx gives its entries: a hash. */
const hex = (c: string) => c.repeat(64);
const rel = (root: string, e: CacheEntry) => e.paths.map((p) => p.slice(root.length + 1)).sort();
const ofKind = (es: CacheEntry[], kind: string) => es.filter((e) => e.kind === kind);

describe('cache entries', () => {
  test('a file and its companions are one entry; a build tree is one entry measured whole', () => {
    const root = scratch();
    const sha = 'a'.repeat(64);
    put(root, `kernels/${sha}.vmlinux`, Buffer.alloc(64 * 1024, 1));
    put(root, `kernels/${sha}.vmlinux.sha256`, 'sum');
    put(root, `kernels/${sha}.vmlinux.stamp`, 'stamp');
    put(root, `snapshots/${hex('1')}.json`, '{}');
    put(root, `snapshots/${hex('1')}.snap`, Buffer.alloc(8192, 2));
    put(root, `snapshots/${hex('2')}.json`, '{}');
    put(root, `kernel/work/${hex('3')}/obj/a.o`, Buffer.alloc(40_000, 3));
    put(root, `kernel/work/${hex('3')}/obj/deep/b.o`, Buffer.alloc(40_000, 4));
    put(root, `kernel/built/${hex('4')}/bzImage`, 'k');
    put(root, `blobs/ab/${hex('ab')}`, 'blob');
    put(root, `blobs/cd/${hex('cd')}`, 'blob');
    put(root, 'code-hash-0123456789abcdef.json', '{}');
    put(root, 'go-build/00/x-a', 'go');
    put(root, 'photos/holiday.jpg', 'not ours');

    const es = cacheEntries(root);
    assert.deepEqual(
      ofKind(es, 'kernels').map((e) => rel(root, e)),
      [[`kernels/${sha}.vmlinux`, `kernels/${sha}.vmlinux.sha256`, `kernels/${sha}.vmlinux.stamp`]],
    );
    assert.deepEqual(
      ofKind(es, 'snapshots').map((e) => rel(root, e)),
      [[`snapshots/${hex('1')}.json`, `snapshots/${hex('1')}.snap`], [`snapshots/${hex('2')}.json`]],
    );
    assert.deepEqual(
      ofKind(es, 'kernel').map((e) => rel(root, e)),
      [[`kernel/work/${hex('3')}`], [`kernel/built/${hex('4')}`]],
    );
    const work = ofKind(es, 'kernel')[0]!;
    assert.ok(work.bytes >= 80_000, `the tree's files count: ${work.bytes}`);
    const vmlinux = ofKind(es, 'kernels')[0]!;
    assert.ok(vmlinux.bytes >= 64 * 1024 && vmlinux.bytes < 128 * 1024, `allocated bytes: ${vmlinux.bytes}`);
    assert.equal(ofKind(es, 'blobs').length, 2);
    assert.equal(ofKind(es, 'records').length, 1);
    assert.deepEqual(
      ofKind(es, 'go-build').map((e) => rel(root, e)),
      [['go-build']],
    );
    assert.ok(
      !es.some((e) => e.paths.some((p) => p.includes('photos'))),
      'names the cache does not know are left out',
    );
    assert.equal(es.filter((e) => e.inUse).length, 0);
  });

  test('an entry was last used when its most recently read or written file was', () => {
    const root = scratch();
    const old = Date.now() / 1000 - 40 * 86400;
    const recent = Date.now() / 1000 - 2 * 86400;
    const [a, b, src] = [hex('a'), hex('b'), hex('c')];
    for (const f of [`${a}.cpio`, `${a}.cpio.sha256`]) utimesSync(put(root, `initrds/${f}`), old, old);
    utimesSync(put(root, `initrds/${b}.cpio`), old, old);
    utimesSync(join(root, `initrds/${a}.cpio.sha256`), recent, recent);
    const t = put(root, `kernel/src/${src}/Makefile`);
    utimesSync(t, old, old);
    utimesSync(dirname(t), old, old);
    utimesSync(t, recent, old); // read two days ago
    const es = cacheEntries(root);
    const byName = new Map(es.map((e) => [rel(root, e)[0]!, e.lastUsed]));
    assert.equal(Math.round(byName.get(`initrds/${a}.cpio`)! / 1000), Math.round(recent));
    assert.equal(Math.round(byName.get(`initrds/${b}.cpio`)! / 1000), Math.round(old));
    assert.equal(Math.round(byName.get(`kernel/src/${src}`)! / 1000), Math.round(recent));
  });

  test('links are entries of their own: not followed, not measured through, removed as links', () => {
    const root = scratch();
    const outside = scratch();
    const precious = put(outside, 'precious/data.bin', Buffer.alloc(256 * 1024, 7));
    mkdirSync(join(root, 'kernels'), { recursive: true });
    symlinkSync(precious, join(root, `kernels/${hex('e')}.vmlinux`));
    mkdirSync(join(root, 'kernel/work'), { recursive: true });
    symlinkSync(join(outside, 'precious'), join(root, `kernel/work/${hex('e')}`));
    mkdirSync(join(root, 'blobs'), { recursive: true });
    symlinkSync(join(outside, 'precious'), join(root, 'blobs/zz'));
    const es = cacheEntries(root);
    assert.deepEqual(es.map((e) => rel(root, e)).sort(), [
      [`kernel/work/${hex('e')}`],
      [`kernels/${hex('e')}.vmlinux`],
    ]);
    for (const e of es) {
      assert.ok(e.bytes < 64 * 1024, `${e.paths[0]} measured through its link: ${e.bytes}`);
      removeEntry(e);
    }
    assert.equal(readFileSync(precious).length, 256 * 1024, 'what the links point at is intact');
    assert.ok(
      existsSync(join(root, 'blobs/zz')),
      'a link where a directory of entries belongs is not entered',
    );
    assert.ok(!existsSync(join(root, `kernels/${hex('e')}.vmlinux`)));
  });

  test('a kernel build tree locked by a live process and temporaries of live writers are in use', () => {
    const root = scratch();
    const dead = deadPid();
    put(root, `kernel/work/${hex('b')}/lock`, `${process.pid}\n`);
    put(root, `kernel/work/${hex('c')}/lock`, `${dead}\n`);
    put(root, `tmp/bpf-${process.pid}-AbC123/x`);
    put(root, `tmp/bpf-${dead}-AbC123/x`);
    put(root, `debs/.${'b'.repeat(64)}.deb.tmp-${process.pid}-0a1b2c3d`);
    put(root, `debs/.${'c'.repeat(64)}.deb.tmp-${dead}-0a1b2c3d`);
    put(root, `debs/${'b'.repeat(64)}.deb`);
    const es = cacheEntries(root);
    const busy = es.filter((e) => e.inUse).map((e) => [rel(root, e)[0], e.inUse]);
    assert.deepEqual(busy, [
      [`debs/.${'b'.repeat(64)}.deb.tmp-${process.pid}-0a1b2c3d`, `being written by pid ${process.pid}`],
      [`kernel/work/${hex('b')}`, `a kernel build (pid ${process.pid}) is using it`],
      [`tmp/bpf-${process.pid}-AbC123`, `being written by pid ${process.pid}`],
    ]);
    // a temporary is its own entry, never grouped with the file it will become
    assert.equal(ofKind(es, 'debs').length, 3);
  });

  test('temporary directories carry their process, so a sweep can tell a live one', () => {
    const root = scratch();
    mkdirSync(join(root, 'tmp'));
    const d = cacheTempDir({ root }, 'kernel-built');
    assert.match(d, new RegExp(`/tmp/kernel-built-${process.pid}-[A-Za-z0-9]{6}$`));
    assert.equal(
      cacheEntries(root).find((e) => e.kind === 'tmp')?.inUse,
      `being written by pid ${process.pid}`,
    );
    assert.ok(statSync(d).isDirectory());
  });

  test('names kjx does not give are no entries: a cache directory set to a home directory loses nothing', () => {
    const home = scratch();
    for (const f of [
      'tmp/notes.txt',
      'tmp/build/output.log',
      'debs/README',
      'debs/hello_1.0_amd64.deb',
      'kernel/work/linux/Makefile',
      'kernel/built/mine/bzImage',
      'stages/todo.json',
      'kernels/my.vmlinux',
      'specs/kjx.yaml',
      'accel/notes',
      'toolchain.json.bak',
    ])
      put(home, f);
    put(home, `debs/${hex('d')}.deb`);
    assert.deepEqual(
      cacheEntries(home).map((e) => rel(home, e)),
      [[`debs/${hex('d')}.deb`]],
    );
  });

  test('a cache directory that is not there has no entries', () => {
    assert.deepEqual(cacheEntries(join(scratch(), 'none')), []);
  });
});
