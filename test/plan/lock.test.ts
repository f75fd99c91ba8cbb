/**
 * kjx.lock comes with a clone: hostile values are refused with file:line:col before
 * apt is asked anything, and nothing from it can become an apt option.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Lock, loadLock, lockFromResolved, writeLock } from '../../src/plan/lock.js';
import { parseLock } from '../../src/plan/lock-check.js';
import { resolvePlanPackages } from '../../src/plan/resolve.js';
import type { AptIndex, ResolvedPackage } from '../../src/sources/apt.js';
import { parseSpec } from '../../src/spec/load.js';
import { isKjxError, type KjxError } from '../../src/util/errors.js';
import { knownValid } from '../../src/util/known-valid.js';
import { kjxError } from '../helpers/kjx-error.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function pkg(name: string, over: Partial<ResolvedPackage> = {}): ResolvedPackage {
  return {
    name,
    version: '1.35.0-4+b3',
    arch: 'amd64',
    filename: `pool/main/b/${name}/${name}_1.35.0-4+b3_amd64.deb`,
    size: 10,
    sha256: 'a'.repeat(64),
    depends: [['libc6']],
    provides: [],
    root: true,
    ...over,
  };
}

const goodLock = (): Lock =>
  lockFromResolved(['busybox'], 'linux-image-amd64', [pkg('busybox'), pkg('libc6', { root: false })], {
    ...pkg('linux-image-6.1.0-18-amd64'),
    version: '6.1.76-1',
  });

const text = (lock: unknown): string => `${JSON.stringify(lock, null, 2)}\n`;

function lockError(t: string): KjxError {
  try {
    parseLock(t, 'kjx.lock');
  } catch (e) {
    if (isKjxError(e) && e.code === 'LOCK_INVALID') return e;
    throw e;
  }
  assert.fail('the lock was accepted');
}

/** 1-based line and column of the first occurrence of `needle` in `t`. */
function where(t: string, needle: string): string {
  const i = t.indexOf(needle);
  assert.ok(i >= 0, `${needle} is in the text`);
  const before = t.slice(0, i).split('\n');
  return `kjx.lock:${before.length}:${before[before.length - 1]!.length + 1}`;
}

test('a lock kjx wrote reads back unchanged', () => {
  const lock = goodLock();
  assert.deepEqual(parseLock(text(lock), 'kjx.lock'), lock);
});

test('a lock as writeLock wrote it (read without the YAML parser) and the same lock written by hand read alike', async () => {
  const d = mkdtempSync(join(tmpdir(), 'kjx-lock-'));
  try {
    const path = join(d, 'kjx.lock');
    writeLock(path, goodLock());
    const fast = await loadLock(path);
    // unsorted keys and a missing final newline take the parser with positions
    const byHand = JSON.stringify(goodLock(), null, 1);
    assert.deepEqual(fast, parseLock(byHand, 'kjx.lock'));
    assert.deepEqual(fast, goodLock());
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('loadLock remembers the bytes of a lock that passed as kjx writes it, for this code only, and never a refused one', async () => {
  const d = mkdtempSync(join(tmpdir(), 'kjx-lock-'));
  dirs.push(d);
  const path = join(d, 'kjx.lock');
  const marks = join(d, 'valid');
  const known = knownValid(marks, 'code-1');
  assert.equal(await loadLock(join(d, 'none.lock'), known), undefined);

  writeLock(path, goodLock());
  const text = readFileSync(path, 'utf8');
  assert.equal(known.has(text), false);
  assert.deepEqual(await loadLock(path, known), goodLock());
  assert.equal(known.has(text), true);
  assert.deepEqual(await loadLock(path, known), goodLock());
  // another kjx (its code hash) checks for itself
  assert.equal(knownValid(marks, 'code-2').has(text), false);

  // one byte more: other bytes, checked again (and refused)
  const bad = text.replace('"1.35.0-4+b3"', '"--force-yes"');
  writeFileSync(path, bad);
  await assert.rejects(loadLock(path, known), kjxError('LOCK_INVALID'));
  await assert.rejects(loadLock(path, known), kjxError('LOCK_INVALID'));
  assert.equal(known.has(bad), false);

  // valid, but not as kjx writes it: read (with positions) every time, not remembered
  const byHand = JSON.stringify(goodLock(), null, 1);
  writeFileSync(path, byHand);
  assert.deepEqual(await loadLock(path, known), goodLock());
  assert.equal(known.has(byHand), false);
  assert.deepEqual(readdirSync(marks).length, 1);
});

test('a lock laid out as writeLock writes it, with a key given twice, is still refused', () => {
  const lines = text(goodLock()).split('\n');
  lines.splice(1, 0, '  "lockVersion": 1,');
  assert.match(lockError(lines.join('\n')).message, /^kjx\.lock:\d+:3: /);
});

test('a package name that is an apt option is refused at its key', () => {
  const lock = goodLock();
  const bad = '-oAPT::Get::AllowUnauthenticated=true';
  lock.packages[bad] = lock.packages.busybox!;
  const t = text(lock);
  const e = lockError(t);
  assert.ok(e.message.startsWith(`${where(t, `"${bad}"`)}: packages.${bad}: expected a Debian package name`));
  assert.deepEqual(e.position, { file: 'kjx.lock', ...lineCol(where(t, `"${bad}"`)) });
});

function lineCol(pos: string): { line: number; column: number } {
  const [, line, column] = pos.split(':');
  return { line: Number(line), column: Number(column) };
}

test('a shell-looking name, a version with spaces or an option, and climbing paths are all refused', () => {
  const lock = goodLock();
  lock.packages['foo;rm'] = lock.packages.busybox!;
  lock.packages.busybox = { ...lock.packages.busybox!, version: '1.0 -o=Dir::Etc::sourcelist=/tmp/x' };
  lock.packages.libc6 = {
    ...lock.packages.libc6!,
    version: '-oAPT::Sandbox::User=root',
    filename: '../../etc/passwd.deb',
    depends: [['--allow-unauthenticated']],
  };
  lock.kernel = { ...lock.kernel!, filename: '/etc/shadow.deb', arch: 'amd64 -q' };
  lock.roots = ['busybox', '-s'];
  const t = text(lock);
  const e = lockError(t);
  const all = [e.message, ...e.details].join('\n');
  for (const [path, value] of [
    ['packages.foo;rm', '"foo;rm"'],
    ['packages.busybox.version', '"1.0 -o=Dir::Etc::sourcelist=/tmp/x"'],
    ['packages.libc6.version', '"-oAPT::Sandbox::User=root"'],
    ['packages.libc6.filename', '"../../etc/passwd.deb"'],
    ['packages.libc6.depends.0.0', '"--allow-unauthenticated"'],
    ['kernel.filename', '"/etc/shadow.deb"'],
    ['kernel.arch', '"amd64 -q"'],
    ['roots.1', '"-s"'],
  ] as const)
    assert.match(
      all,
      new RegExp(`kjx\\.lock:\\d+:\\d+: ${reEscape(path)}: expected .*, got ${reEscape(value)}`),
    );
  assert.equal(e.details.length, 7, all);
  assert.match(e.hint ?? '', /--update-lock/);
});

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('versions follow policy 5.6.12: colons need an epoch, hyphens a revision', () => {
  for (const [version, ok] of [
    ['1:2.3-4', true],
    ['2.36-9+deb12u4', true],
    ['1.0~rc1', true],
    ['1:1.2:3-1', true],
    ['1.2:3', false],
    ['1.0-', false],
    ['a1.0', false],
    ['1.0-1_2', false],
    ['x:1.0', false],
    ['1.0\n', false],
  ] as const) {
    const lock = goodLock();
    lock.packages.busybox = { ...lock.packages.busybox!, version };
    if (ok) assert.doesNotThrow(() => parseLock(text(lock), 'kjx.lock'), version);
    else assert.match(lockError(text(lock)).message, /packages\.busybox\.version: expected a Debian version/);
  }
});

test('a key given twice and broken JSON point at the place', () => {
  const t = '{\n  "lockVersion": 1,\n  "lockVersion": 1\n}\n';
  assert.match(lockError(t).message, /^kjx\.lock:3:3: /);
  const broken = '{\n  "lockVersion": 1,\n  "roots": [\n}\n';
  assert.match(lockError(broken).message, /^kjx\.lock:4:1: not valid JSON/);
});

test('a hostile lock stops the build before apt is asked anything', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-lock-'));
  dirs.push(dir);
  const lockPath = join(dir, 'kjx.lock');
  const lock = goodLock();
  lock.packages.busybox = { ...lock.packages.busybox!, version: '1 -oAPT::Get::AllowUnauthenticated=1' };
  writeFileSync(lockPath, text(lock));
  const asked: string[] = [];
  const index: AptIndex = {
    async show(names) {
      asked.push(...names);
      return new Map();
    },
    async providers(name) {
      asked.push(name);
      return [];
    },
  };
  const spec = parseSpec('packages: [strace]\n', join(dir, 'kjx.yaml'));
  await assert.rejects(
    resolvePlanPackages({ spec, lockPath, updateLock: false, index }),
    kjxError('LOCK_INVALID'),
  );
  assert.deepEqual(asked, []);
});
