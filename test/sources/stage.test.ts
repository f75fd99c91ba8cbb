import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readDeb } from '../../src/sources/deb.js';
import { stageDeb } from '../../src/sources/stage.js';
import type { TarEntry } from '../../src/sources/tar.js';
import {
  buildDeb,
  type FixtureEntry,
  LONG_LINK_TARGET,
  LONG_NAME,
  LONG_NAME_PAX,
  sampleEntries,
} from '../fixtures/deb-fixtures.js';
import { assertKjxError, kjxError } from '../helpers/kjx-error.js';

const PKG = { name: 'evil', version: '6.6.6-1' };
const SOURCE = { kind: 'deb', package: 'evil', version: '6.6.6-1' } as const;

/** Build a real .deb from fixture entries, read it back and stage it. */
function stage(entries: FixtureEntry[]) {
  return stageDeb(readDeb(buildDeb({ entries }), 'evil.deb').dataEntries, PKG);
}

/** Assert DEB_UNSAFE naming the package, the exact archived entry name and the problem. */
function refused(entries: FixtureEntry[], entryName: string, problem: RegExp): void {
  assert.throws(
    () => stage(entries),
    (e: unknown) => {
      assertKjxError(e, 'DEB_UNSAFE');
      assert.ok(e.message.startsWith(`package evil 6.6.6-1: entry "${entryName}" `), e.message);
      assert.match(e.message, problem);
      assert.ok(e.hint);
      return true;
    },
  );
}

const ROOT: FixtureEntry[] = [
  { name: './', type: 'dir' },
  { name: './usr/', type: 'dir' },
  { name: './usr/lib/', type: 'dir' },
];

describe('stageDeb: a normal package', () => {
  const tree = stage(sampleEntries());

  it('normalizes names ("./" -> "/", "./usr/bin/x" -> "/usr/bin/x") and keeps every entry', () => {
    const expectedPaths = sampleEntries().map((e) =>
      e.name === './' ? '/' : e.name.slice(1).replace(/\/$/, ''),
    );
    assert.deepEqual([...tree.keys()], expectedPaths);
    for (const e of tree.values()) assert.deepEqual(e.source, SOURCE);
  });

  it('keeps types, modes, ids, times, data, link targets and device numbers', () => {
    assert.deepEqual(tree.get('/'), {
      type: 'dir',
      path: '/',
      mode: 0o755,
      uid: 0,
      gid: 0,
      mtime: 1700000000,
      source: SOURCE,
    });
    const hello = tree.get('/bin/hello');
    assert.equal(hello?.type, 'file');
    assert.equal(hello.mode, 0o755);
    assert.equal(hello.data.toString(), '#!/bin/sh\necho hello\n');
    assert.equal(tree.get('/bin/su-hello')?.mode, 0o4755);
    assert.equal(tree.get('/var')?.mode, 0o1777);
    assert.deepEqual([tree.get('/etc/hello.conf')?.mode, tree.get('/etc/hello.conf')?.gid], [0o640, 42]);
    assert.deepEqual(tree.get('/bin/hello-again'), {
      type: 'hardlink',
      path: '/bin/hello-again',
      target: '/bin/hello',
      mode: 0o755,
      uid: 0,
      gid: 0,
      mtime: 1700000000,
      source: SOURCE,
    });
    assert.deepEqual(
      [tree.get('/usr/bin/hello')?.type, (tree.get('/usr/bin/hello') as { target: string }).target],
      ['symlink', '../../bin/hello'],
    );
    assert.equal((tree.get('/usr/bin/editor') as { target: string }).target, '/etc/alternatives/editor');
    assert.equal((tree.get('/usr/share/long-link') as { target: string }).target, LONG_LINK_TARGET);
    assert.equal((tree.get('/usr/share/long-link-pax') as { target: string }).target, LONG_LINK_TARGET);
    assert.equal(tree.get(LONG_NAME.slice(1))?.uid, 1000);
    assert.equal(tree.get(LONG_NAME_PAX.slice(1))?.mtime, 1234567890);
    assert.deepEqual([tree.get('/dev/console')?.type, tree.get('/dev/console')?.mode], ['char', 0o600]);
    const sda = tree.get('/dev/sda');
    assert.ok(sda?.type === 'block');
    assert.deepEqual([sda.major, sda.minor, sda.gid], [8, 0, 6]);
    assert.equal(tree.get('/run/initctl')?.type, 'fifo');
    assert.deepEqual(
      [tree.get('/var/big-ids')?.uid, tree.get('/var/big-ids')?.mtime],
      [3_000_000_000, -86400],
    );
  });

  it('accepts relative symlinks that stay inside, and absolute ones', () => {
    const t = stage([
      ...ROOT,
      { name: './usr/lib/a', type: 'symlink', linkname: '../../etc/a' }, // reaches exactly "/"
      { name: './usr/lib/b', type: 'symlink', linkname: './x/../../lib/./b' },
      { name: './usr/lib/c', type: 'symlink', linkname: '/../../../etc/shadow' }, // absolute: stays in the guest
    ]);
    assert.equal(t.size, 6);
  });

  it('lets a directory archived twice take the later metadata', () => {
    const t = stage([...ROOT, { name: './usr/lib', type: 'dir', mode: 0o700 }]);
    assert.equal(t.get('/usr/lib')?.mode, 0o700);
  });

  it('points hard links at the original file, never at another link', () => {
    const t = stage([
      { name: './f', type: 'file', data: 'x' },
      { name: './g', type: 'hardlink', linkname: './f' },
      { name: './h', type: 'hardlink', linkname: 'g' },
    ]);
    assert.equal((t.get('/h') as { target: string }).target, '/f');
  });

  it('tolerates names without "./" and with doubled slashes', () => {
    const t = stage([{ name: 'usr//bin/./x', type: 'file' }]);
    assert.deepEqual([...t.keys()], ['/usr/bin/x']);
  });
});

describe('stageDeb: security regressions', () => {
  it('refuses an entry with "../" and names package and entry', () => {
    refused([...ROOT, { name: './../etc/passwd', type: 'file' }], './../etc/passwd', /".." segment/);
    refused([{ name: '../../x', type: 'file' }], '../../x', /".." segment/);
  });

  it('refuses even a ".." that would stay inside', () => {
    refused([...ROOT, { name: './usr/../etc/x', type: 'file' }], './usr/../etc/x', /".." segment/);
  });

  it('refuses an absolute entry name', () => {
    refused([{ name: '/etc/shadow', type: 'file' }], '/etc/shadow', /absolute name "\/etc\/shadow"/);
  });

  it('refuses a relative symlink that climbs above the root (usr/lib/x -> ../../../../etc/shadow)', () => {
    refused(
      [...ROOT, { name: './usr/lib/x', type: 'symlink', linkname: '../../../../etc/shadow' }],
      './usr/lib/x',
      /symlink to "\.\.\/\.\.\/\.\.\/\.\.\/etc\/shadow", which climbs above the package root/,
    );
    refused([{ name: './x', type: 'symlink', linkname: '..' }], './x', /climbs above/);
    refused([{ name: './x', type: 'symlink', linkname: 'a/../../b' }], './x', /climbs above/);
  });

  it('refuses a hard link that climbs out or is absolute', () => {
    refused(
      [...ROOT, { name: './usr/lib/pw', type: 'hardlink', linkname: '../../etc/shadow' }],
      './usr/lib/pw',
      /hard link target "\.\.\/\.\.\/etc\/shadow" with a ".." segment/,
    );
    refused(
      [...ROOT, { name: './usr/lib/pw', type: 'hardlink', linkname: '/etc/shadow' }],
      './usr/lib/pw',
      /absolute hard link target "\/etc\/shadow"/,
    );
  });

  it('refuses a hard link to something that is not an earlier entry', () => {
    refused(
      [
        ...ROOT,
        { name: './usr/lib/a', type: 'hardlink', linkname: './usr/lib/b' },
        { name: './usr/lib/b', type: 'file' },
      ],
      './usr/lib/a',
      /hard link to "\.\/usr\/lib\/b", which is not an earlier entry/,
    );
    refused([{ name: './self', type: 'hardlink', linkname: './self' }], './self', /not an earlier entry/);
    refused(
      [...ROOT, { name: './l', type: 'hardlink', linkname: './usr/lib' }],
      './l',
      /hard link to the directory/,
    );
  });

  it('refuses an entry written through a symlink placed earlier (a -> /tmp, then a/x)', () => {
    refused(
      [
        { name: './a', type: 'symlink', linkname: '/tmp' },
        { name: './a/x', type: 'file', data: 'pwned' },
      ],
      './a/x',
      /would be written through the symlink \/a -> \/tmp placed earlier/,
    );
    // Deeper, and through a relative link that stays inside.
    refused(
      [
        ...ROOT,
        { name: './usr/lib/l', type: 'symlink', linkname: '..' },
        { name: './usr/lib/l/sub/f', type: 'file' },
      ],
      './usr/lib/l/sub/f',
      /through the symlink \/usr\/lib\/l -> \.\./,
    );
  });

  it('refuses replacing an earlier symlink with a directory (then writing through it)', () => {
    refused(
      [
        { name: './a', type: 'symlink', linkname: '/tmp' },
        { name: './a/', type: 'dir' },
      ],
      './a/',
      /appears twice in the archive \(as symlink, then as dir\)/,
    );
  });

  it('refuses an entry below a file or hard link', () => {
    refused(
      [
        { name: './f', type: 'file' },
        { name: './f/x', type: 'file' },
      ],
      './f/x',
      /has \/f as parent, which is a file, not a directory/,
    );
  });

  it('refuses a symlink placed over a path that already has entries below it', () => {
    refused(
      [
        { name: './a/x', type: 'file' },
        { name: './a', type: 'symlink', linkname: '/tmp' },
      ],
      './a',
      /is a symlink at a path that already has entries below it/,
    );
  });

  it('refuses duplicate non-directory entries and a non-directory root', () => {
    refused(
      [
        { name: './f', type: 'file', data: '1' },
        { name: './f', type: 'file', data: '2' },
      ],
      './f',
      /appears twice/,
    );
    refused([{ name: './', type: 'symlink', linkname: '/tmp' }], './', /makes the root a symlink/);
  });

  it('refuses names and targets with NUL bytes or empty targets (only reachable through pax)', () => {
    const base: TarEntry = {
      name: './x',
      type: 'symlink',
      mode: 0o777,
      uid: 0,
      gid: 0,
      mtime: 0,
      size: 0,
      linkname: 'a\0b',
      devmajor: 0,
      devminor: 0,
      data: Buffer.alloc(0),
    };
    const check = (e: TarEntry, re: RegExp) =>
      assert.throws(() => stageDeb([e], PKG), kjxError('DEB_UNSAFE', re));
    check(base, /target contains a NUL byte/);
    check({ ...base, linkname: '' }, /empty target/);
    check({ ...base, name: './a\0/b', type: 'file' }, /containing a NUL byte/);
    check({ ...base, name: '', type: 'file' }, /empty name/);
  });

  it('never returns a path outside "/" for any accepted entry (pax path with tricks)', () => {
    refused([{ name: './ok', type: 'file', pax: { path: '/etc/passwd' } }], '/etc/passwd', /absolute name/);
    refused([{ name: './ok', type: 'file', pax: { path: 'a/../../x' } }], 'a/../../x', /".." segment/);
  });
});
