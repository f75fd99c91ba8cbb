/**
 * `kjx cache` and `kjx cache clean` through the real CLI, on a cache made of small
 * files: what is listed, what each form of clean removes and keeps, and the bad
 * inputs, which remove nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, beforeEach, describe, test } from 'node:test';
import { EXIT } from '../../src/cli/exit-codes.js';
import { removeAll, runKjx } from '../helpers/kjx.js';

const cwd = mkdtempSync(join(tmpdir(), 'kjx-cache-cli-'));
const made: string[] = [cwd];
after(() => removeAll(...made));

function newCacheDir(name: string): string {
  const d = mkdtempSync(join(tmpdir(), 'kjx-cache-'));
  made.push(d);
  return join(d, name);
}

const OLD = Date.now() / 1000 - 45 * 86400;
const WORK = 'f'.repeat(64);
let cache: string;

function put(rel: string, data: string | Buffer, old = false): void {
  const p = join(cache, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
  if (old) utimesSync(p, OLD, OLD);
}

const kjx = (...args: string[]) => runKjx(['cache', ...args], { cwd, cache, timeoutMs: 60_000 });
const files = () =>
  readdirSync(cache, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length;

describe('kjx cache', () => {
  beforeEach(() => {
    cache = newCacheDir('kjx');
    put(`debs/${'a'.repeat(64)}.deb`, Buffer.alloc(3 * 1024 * 1024, 1), true);
    put(`debs/${'b'.repeat(64)}.deb`, Buffer.alloc(1024 * 1024, 2));
    put(`kernels/${'c'.repeat(64)}.vmlinux`, Buffer.alloc(2 * 1024 * 1024, 3), true);
    put(`kernels/${'c'.repeat(64)}.vmlinux.sha256`, 'sum', true);
    put(`kernel/work/${WORK}/obj/vmlinux.o`, Buffer.alloc(5 * 1024 * 1024, 4));
    put(`kernel/work/${WORK}/lock`, `${process.pid}\n`);
    put(`specs/${'e'.repeat(64)}.json`, '{}', true);
    put('notes.txt', 'mine');
  });

  test('lists each kind with its entries, size and last use, and what is not kjx', () => {
    const r = kjx();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^cache: ${cache}$`, 'm'));
    assert.match(r.stdout, /^KIND +ENTRIES +SIZE +LAST USED +WHAT$/m);
    assert.match(r.stdout, /^debs +2 +4\.\d\d MiB +\d{4}-\d\d-\d\d +downloaded Debian packages$/m);
    assert.match(r.stdout, /^kernels +1 +2\.\d\d MiB /m);
    assert.match(r.stdout, /^kernel +1 +5\.\d\d MiB /m);
    assert.match(r.stdout, /^total 11\.\d\d MiB/m);
    assert.match(r.stdout, /^not kjx's, left alone: notes\.txt$/m);
    assert.doesNotMatch(r.stdout, /^blobs/m, 'a kind with no entries is not listed');

    const j = runKjx(['cache', 'list', '--json'], { cwd, cache });
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as {
      root: string;
      kinds: { kind: string; entries: number }[];
      other: string[];
    };
    assert.equal(doc.root, cache);
    assert.equal(doc.kinds.find((k) => k.kind === 'debs')?.entries, 2);
    assert.equal(doc.kinds.find((k) => k.kind === 'blobs')?.entries, 0);
    assert.deepEqual(doc.other, ['notes.txt']);
  });

  test('clean --dry-run says what would go and removes nothing', () => {
    const before = files();
    const r = kjx('clean', '--dry-run');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^would remove debs: 2 entries, 4\.\d\d MiB$/m);
    assert.match(
      r.stdout,
      new RegExp(`^kept kernel/work/${WORK}: a kernel build \\(pid \\d+\\) is using it$`, 'm'),
    );
    assert.match(r.stdout, /^would remove 4 entries, /m);
    assert.equal(files(), before);
  });

  test('clean removes every entry but those in use, and nothing that is not kjx', () => {
    const r = kjx('clean');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^removed 4 entries, 6\.\d\d MiB/m);
    assert.deepEqual(
      readdirSync(cache, { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile())
        .map((d) => join(d.parentPath, d.name).slice(cache.length + 1))
        .sort(),
      [`kernel/work/${WORK}/lock`, `kernel/work/${WORK}/obj/vmlinux.o`, 'notes.txt'],
    );
  });

  test('clean KIND removes that kind only; --older-than only what was not used for that long', () => {
    let r = kjx('clean', 'kernels', 'specs');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(join(cache, 'kernels')), []);
    assert.deepEqual(readdirSync(join(cache, 'specs')), []);
    assert.equal(readdirSync(join(cache, 'debs')).length, 2);

    r = kjx('clean', '--older-than', '30');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^removed debs: 1 entries, 3\.00 MiB$/m);
    assert.deepEqual(readdirSync(join(cache, 'debs')), [`${'b'.repeat(64)}.deb`]);
    r = kjx('clean', 'debs', '--older-than', '0.5d');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(join(cache, 'debs')), [`${'b'.repeat(64)}.deb`], 'used today');
  });

  test('an unknown kind or a bad --older-than is a usage error that removes nothing', () => {
    const before = files();
    let r = kjx('clean', 'debs', 'photos');
    assert.equal(r.code, EXIT.usage);
    assert.match(r.stderr, /no kind of cache entry is called "photos"/);
    assert.match(r.stderr, /hint: the kinds are debs, blobs, stages, kernel, /);
    r = kjx('clean', '--older-than', 'last week');
    assert.equal(r.code, EXIT.usage);
    assert.match(r.stderr, /--older-than "last week": not a number of days/);
    r = kjx('clean', '--older-than', '-3');
    assert.equal(r.code, EXIT.usage);
    assert.equal(files(), before);
  });

  test('a cache that does not exist is said so, and not created', () => {
    cache = newCacheDir('none');
    for (const args of [[], ['clean']]) {
      const r = kjx(...args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^nothing cached: .*\/none does not exist$/m);
    }
    assert.ok(!existsSync(cache));
  });
});
