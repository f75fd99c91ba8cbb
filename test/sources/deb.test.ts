import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { parseControl } from '../../src/sources/control.js';
import { type DebContents, readDeb } from '../../src/sources/deb.js';
import { stageDeb } from '../../src/sources/stage.js';
import { parseTar } from '../../src/sources/tar.js';
import { type ErrorCode, isKjxError } from '../../src/util/errors.js';
import {
  buildDeb,
  compress,
  debMembers,
  type FixtureCompression,
  hasXz,
  hasZstd,
  sampleEntries,
  writeAr,
  writeTar,
} from '../fixtures/deb-fixtures.js';
import { damageAt, expectVerdict, plainTar, tarVerdict, type Verdict } from '../helpers/damage.js';
import { assertKjxError, kjxError } from '../helpers/kjx-error.js';
import { needs } from '../helpers/prereq.js';

/** Formats whose test data need a host tool, skipped (failed under CI) without it. */
const SKIP: Record<FixtureCompression, string | false> = {
  gz: false,
  none: false,
  xz: needs('xz (makes the .xz test data)', !hasXz() && '`xz --version` does not run'),
  zst: needs('zstd (makes the .zst test data)', !hasZstd() && '`zstd --version` does not run'),
};
const FORMATS: FixtureCompression[] = ['gz', 'xz', 'zst', 'none'];

function rejects(fn: () => unknown, pattern: RegExp, code: ErrorCode = 'DEB_INVALID'): void {
  assert.throws(fn, (e: unknown) => {
    assertKjxError(e, code);
    assert.match(e.message, pattern);
    return true;
  });
}

const isDebInvalid = kjxError('DEB_INVALID');

/** A package as read, with data copied out of the archive, for comparing. */
const plainDeb = (d: DebContents) => ({ control: d.control, dataEntries: d.dataEntries.map(plainTar) });

/** Offsets of an ar archive's magic, member headers, padding bytes and the debian-binary member. */
function arHotSpots(deb: Buffer): number[] {
  const hot = [0, 1, 2, 3, 4, 5, 6, 7];
  for (let off = 8; off < deb.length; ) {
    for (let i = 0; i < 60; i++) hot.push(off + i);
    const size = Number(deb.toString('latin1', off + 48, off + 58).trim());
    if (deb.toString('latin1', off, off + 16).trim() === 'debian-binary')
      for (let i = 0; i < size; i++) hot.push(off + 60 + i);
    if (size % 2 === 1) hot.push(off + 60 + size);
    off += 60 + size + (size % 2);
  }
  return hot;
}

/**
 * What readDeb must make of a .deb with uncompressed members (as buildDeb writes
 * it) after byte `at` became `value`. ar checks its magic, each header's
 * terminator and size field, and the member names readDeb looks for; it does not
 * check a header's mtime, ids or mode, nor the padding byte after an odd member,
 * so damage there must not change what is read. Inside the members, the tar rules
 * hold (tarVerdict); damage to the control file may also make it unparsable.
 */
function debVerdict(deb: Buffer, good: DebContents, at: number, value: number): Verdict<DebContents> {
  const want = plainDeb(good);
  const same = (why: string, mayRefuse = false): Verdict<DebContents> => ({
    why,
    mayRefuse,
    accept: (got) => assert.deepEqual(plainDeb(got), want),
  });
  if (deb[at] === value) return same('unchanged');
  if (at < 8) return { why: 'ar magic', mayRefuse: true };
  let off = 8;
  for (;;) {
    const name = deb.toString('latin1', off, off + 16).trim();
    const size = Number(deb.toString('latin1', off + 48, off + 58).trim());
    const start = off + 60;
    const rel = at - off;
    if (rel < 16) return same('ar member name', true);
    if (rel < 48) return same('ar mtime, uid, gid or mode (not checked)');
    if (rel < 58) return same('ar size field', true);
    if (rel < 60) return { why: 'ar header terminator', mayRefuse: true };
    if (at < start + size) {
      const member = deb.subarray(start, start + size);
      const damaged = Buffer.from(member);
      damaged[at - start] = value;
      if (name === 'debian-binary') return same('debian-binary', true);
      if (name === 'control.tar') {
        const v = tarVerdict(member, parseTar(member, 'control'), at - start, value);
        return {
          why: `control.tar: ${v.why}`,
          mayRefuse: true,
          accept: v.accept
            ? (got) => {
                assert.deepEqual(got.dataEntries.map(plainTar), want.dataEntries);
                const entries = parseTar(damaged, 'control');
                v.accept!(entries);
                const file = entries.find((e) => e.name === './control')!;
                assert.deepEqual(got.control, parseControl(file.data.toString('utf8'), 'control'));
              }
            : undefined,
        };
      }
      const v = tarVerdict(member, good.dataEntries, at - start, value);
      return {
        why: `data.tar: ${v.why}`,
        mayRefuse: v.mayRefuse,
        accept: v.accept
          ? (got) => {
              assert.deepEqual(got.control, want.control);
              v.accept!(got.dataEntries);
            }
          : undefined,
      };
    }
    if (size % 2 === 1 && at === start + size) return same('ar padding byte (not checked)');
    off = start + size + (size % 2);
  }
}

describe('readDeb', () => {
  for (const format of FORMATS) {
    it(`reads control fields and data entries (control and data ${format})`, {
      skip: SKIP[format],
    }, () => {
      const deb = buildDeb({ entries: sampleEntries(), dataCompression: format, controlCompression: format });
      const { control, dataEntries } = readDeb(deb, 'hello.deb');
      assert.equal(control.Package, 'hello');
      assert.equal(control.Version, '1.0-1');
      assert.deepEqual(
        dataEntries.map((e) => e.name),
        sampleEntries().map((e) => e.name),
      );
      assert.equal(
        dataEntries.find((e) => e.name === './bin/hello')!.data.toString(),
        '#!/bin/sh\necho hello\n',
      );
    });
  }

  it('accepts GNU-style member names with a trailing slash', () => {
    assert.equal(
      readDeb(buildDeb({ entries: sampleEntries(), slash: true }), 'h.deb').control.Package,
      'hello',
    );
  });

  it('accepts a later 2.x minor version with extra lines, as deb(5) asks', () => {
    const deb = buildDeb({ entries: sampleEntries(), debianBinary: '2.9\nsomething new\n' });
    assert.equal(readDeb(deb, 'h.deb').control.Package, 'hello');
  });

  it('refuses a wrong debian-binary version', () => {
    for (const v of ['3.0\n', '0.93\n', '', '2\n', 'two\n']) {
      const deb = buildDeb({ entries: sampleEntries(), debianBinary: v });
      rejects(() => readDeb(deb, 'h.deb'), /^h\.deb: unsupported format version/);
    }
  });

  it('refuses an archive whose first member is not debian-binary', () => {
    const [bin, control, data] = debMembers({ entries: sampleEntries() });
    rejects(
      () => readDeb(writeAr([control!, bin!, data!]), 'h.deb'),
      /first member is "control\.tar\.gz", expected "debian-binary"/,
    );
    rejects(() => readDeb(writeAr([]), 'h.deb'), /first member is "\(none\)"/);
  });

  it('skips "_" members and ignores members after data.tar; refuses other members', () => {
    const [bin, control, data] = debMembers({ entries: sampleEntries() });
    const extra = { name: '_gpgorigin', data: Buffer.from('sig') };
    const after = { name: 'future', data: Buffer.from('x') };
    assert.equal(
      readDeb(writeAr([bin!, extra, control!, extra, data!, after]), 'h.deb').control.Package,
      'hello',
    );
    rejects(
      () => readDeb(writeAr([bin!, after, control!, data!]), 'h.deb'),
      /unexpected member "future" where control\.tar was expected/,
    );
    rejects(
      () => readDeb(writeAr([bin!, data!, control!]), 'h.deb'),
      /unexpected member "data\.tar\.gz" where control\.tar was expected/,
    );
    rejects(() => readDeb(writeAr([bin!, control!]), 'h.deb'), /no data\.tar member/);
    rejects(() => readDeb(writeAr([bin!]), 'h.deb'), /no control\.tar member/);
  });

  it('refuses bzip2 and lzma members with a hint', () => {
    const [bin, control] = debMembers({ entries: sampleEntries() });
    const bz = { name: 'data.tar.bz2', data: Buffer.from('BZh9') };
    assert.throws(
      () => readDeb(writeAr([bin!, control!, bz]), 'h.deb'),
      (e: unknown) =>
        isDebInvalid(e) && /uses bz2/.test((e as Error).message) && !!(e as { hint?: string }).hint,
    );
  });

  it('refuses a control.tar without a control file', () => {
    const [bin, , data] = debMembers({ entries: sampleEntries() });
    const control = {
      name: 'control.tar.gz',
      data: compress(writeTar([{ name: './md5sums', type: 'file' }]), 'gz'),
    };
    rejects(
      () => readDeb(writeAr([bin!, control, data!]), 'h.deb'),
      /control\.tar\.gz has no "control" file/,
    );
  });

  it('refuses a corrupted tar header checksum inside data.tar, naming the member', () => {
    const deb = buildDeb({
      entries: sampleEntries(),
      mangleDataTar: (tar) => {
        const t = Buffer.from(tar);
        t[1024 + 10] = t[1024 + 10]! ^ 0x20;
        return t;
      },
    });
    rejects(() => readDeb(deb, 'h.deb'), /^h\.deb: data\.tar\.gz: bad header checksum .* at offset 1024$/);
  });

  for (const format of FORMATS) {
    it(`property: a .deb (data ${format}) cut anywhere is DEB_INVALID, never a crash`, {
      skip: SKIP[format],
    }, () => {
      const deb = buildDeb({ entries: sampleEntries(), dataCompression: format, controlCompression: format });
      fc.assert(
        fc.property(fc.nat({ max: deb.length - 1 }), (cut) => {
          assert.throws(() => readDeb(deb.subarray(0, cut), 'h.deb'), isDebInvalid);
        }),
        { numRuns: 400, examples: [[0], [7], [8], [68], [deb.length - 1]] },
      );
    });

    it(`property: data.tar.${format} cut anywhere inside a well-formed ar is DEB_INVALID`, {
      skip: SKIP[format],
    }, () => {
      const [bin, control, data] = debMembers({ entries: sampleEntries(), dataCompression: format });
      const full = readDeb(
        buildDeb({ entries: sampleEntries(), dataCompression: format }),
        'h.deb',
      ).dataEntries.map(plainTar);
      fc.assert(
        fc.property(fc.nat({ max: data!.data.length - 1 }), (cut) => {
          const deb = writeAr([bin!, control!, { name: data!.name, data: data!.data.subarray(0, cut) }]);
          try {
            // An uncompressed tar cut on a block boundary between entries, or after its
            // first zero block, is a valid tar (dpkg reads it too); all else is refused.
            const { dataEntries } = readDeb(deb, 'h.deb');
            const acceptable = format === 'none' && (cut % 512 === 0 || cut >= data!.data.length - 512);
            assert.ok(acceptable, `cut ${cut} was accepted`);
            // and what it holds is what was written: the entries before the cut
            assert.deepEqual(dataEntries.map(plainTar), full.slice(0, dataEntries.length));
          } catch (e) {
            assert.ok(isDebInvalid(e), `unexpected ${String(e)}`);
          }
        }),
        { numRuns: 300 },
      );
    });
  }

  it('property: a damaged byte is refused where the .deb checks it, and read back as written where it does not', () => {
    // uncompressed members, so the ar and tar layers are what is checked; an odd-sized
    // debian-binary ("2.0" and an ignored second line) adds ar's padding byte
    const deb = buildDeb({
      entries: sampleEntries(),
      dataCompression: 'none',
      controlCompression: 'none',
      debianBinary: '2.0\n\n',
    });
    const good = readDeb(deb, 'h.deb');
    fc.assert(
      fc.property(damageAt(deb.length, arHotSpots(deb)), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const copy = Buffer.from(deb);
        copy[at] = value;
        expectVerdict(
          debVerdict(deb, good, at, value),
          () => readDeb(copy, 'h.deb'),
          'DEB_INVALID',
          `byte ${at} = ${value}`,
        );
      }),
      { numRuns: 3000 },
    );
  });

  for (const format of ['gz', 'xz', 'zst'] as const) {
    it(`property: a damaged byte in a .deb with ${format} members is refused, or the package reads as written`, {
      skip: SKIP[format],
    }, () => {
      // the compressors' checksums cover the members' content (see decompress.test.ts
      // for the few bytes they leave out), the ar layer is checked as above
      const deb = buildDeb({ entries: sampleEntries(), dataCompression: format, controlCompression: format });
      const good = plainDeb(readDeb(deb, 'h.deb'));
      fc.assert(
        fc.property(damageAt(deb.length, arHotSpots(deb)), fc.integer({ min: 0, max: 255 }), (at, value) => {
          const copy = Buffer.from(deb);
          copy[at] = value;
          expectVerdict(
            { why: 'anywhere', mayRefuse: true, accept: (got) => assert.deepEqual(plainDeb(got), good) },
            () => readDeb(copy, 'h.deb'),
            'DEB_INVALID',
            `byte ${at} = ${value}`,
          );
        }),
        { numRuns: 600 },
      );
    });
  }

  it('property: what readDeb accepts from damaged packages, stageDeb stages or refuses with DEB_UNSAFE/DEB_INVALID', () => {
    // the stager's own robustness: its input is whatever the reader passed on
    const deb = buildDeb({ entries: sampleEntries(), dataCompression: 'none', controlCompression: 'none' });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: deb.length - 1 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        (edits) => {
          const copy = Buffer.from(deb);
          for (const [at, byte] of edits) copy[at] = byte;
          try {
            const { control, dataEntries } = readDeb(copy, 'h.deb');
            stageDeb(dataEntries, { name: control.Package ?? '?', version: control.Version ?? '?' });
          } catch (e) {
            assert.ok(
              isKjxError(e) && (e.code === 'DEB_INVALID' || e.code === 'DEB_UNSAFE'),
              `unexpected ${e}`,
            );
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

/** A real busybox .deb: from the apt cache if there is one, else `apt-get download`. */
function findRealBusybox(): { path: string; cleanup: () => void } | string {
  const cache = '/var/cache/apt/archives';
  try {
    const cached = readdirSync(cache).filter((f) => /^busybox(-static)?_.*\.deb$/.test(f));
    if (cached.length > 0) return { path: join(cache, cached.sort()[0]!), cleanup: () => {} };
  } catch {
    // no apt cache on this host; try downloading below
  }
  const got = aptDownload(['busybox-static']);
  if (typeof got === 'string') return `no busybox .deb in ${cache}, and ${got}`;
  return { path: got.paths[0]!, cleanup: got.cleanup };
}

/** `apt-get download` into a fresh directory: the .deb files, or why it failed. */
function aptDownload(packages: string[]): { paths: string[]; cleanup: () => void } | string {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-deb-test-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    execFileSync('apt-get', ['download', ...packages], { cwd: dir, stdio: 'pipe', timeout: 300_000 });
    const paths = readdirSync(dir)
      .filter((f) => f.endsWith('.deb'))
      .sort()
      .map((f) => join(dir, f));
    if (paths.length === packages.length) return { paths, cleanup };
    cleanup();
    return `apt-get download ${packages.join(' ')} gave ${paths.length} .deb files`;
  } catch (e) {
    cleanup();
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim().split('\n').pop();
    return `apt-get download ${packages.join(' ')} failed: ${stderr ?? String(e)}`;
  }
}

/**
 * Packages of Debian 12 made by different hands (dpkg-deb versions, debhelper or
 * not, data.tar.xz and .gz, hard links, long names): what the host's apt cache
 * lacks of a sample is downloaded from these.
 */
const VARIED_DEBS = ['hello', 'tzdata', 'debianutils', 'ucf', 'busybox-static', 'ca-certificates'];

describe('real Debian packages', () => {
  const found = findRealBusybox();

  it('reads and stages busybox: /bin/busybox is there with mode 0755', {
    skip: needs('a busybox .deb (apt cache or apt-get download)', typeof found === 'string' && found),
  }, () => {
    if (typeof found === 'string') return;
    try {
      const { control, dataEntries } = readDeb(readFileSync(found.path), found.path);
      assert.match(control.Package!, /^busybox(-static)?$/);
      const tree = stageDeb(dataEntries, { name: control.Package!, version: control.Version! });
      const bb = tree.get('/bin/busybox');
      assert.equal(bb?.type, 'file');
      assert.equal(bb.mode, 0o755);
      assert.equal(bb.data.subarray(0, 4).toString('latin1'), '\x7fELF');
      assert.deepEqual(bb.source, { kind: 'deb', package: control.Package, version: control.Version });
      assert.equal(tree.get('/')?.type, 'dir');
    } finally {
      found.cleanup();
    }
  });

  // A sample of whatever the host's apt cache holds, to meet tar writers we did not write.
  const cache = '/var/cache/apt/archives';
  let sample: string[] = [];
  try {
    const all = readdirSync(cache)
      .filter((f) => f.endsWith('.deb'))
      .sort()
      .filter((f) => statSync(join(cache, f)).size < 4_000_000);
    const step = Math.max(1, Math.floor(all.length / 15));
    sample = all
      .filter((_, i) => i % step === 0)
      .slice(0, 15)
      .map((f) => join(cache, f));
  } catch {
    // no apt cache (or one that apt cleans after each install): downloaded below
  }
  let cleanup = () => {};
  let problem: string | undefined;
  if (sample.length < VARIED_DEBS.length) {
    const got = aptDownload(VARIED_DEBS);
    if (typeof got === 'string') problem = `${sample.length} .deb files in ${cache}, and ${got}`;
    else {
      sample = got.paths;
      cleanup = got.cleanup;
    }
  }
  after(() => cleanup());
  it('reads and stages a sample of real .debs', { skip: needs('real .deb files', problem) }, () => {
    for (const f of sample) {
      const { control, dataEntries } = readDeb(readFileSync(f), f);
      const tree = stageDeb(dataEntries, { name: control.Package!, version: control.Version! });
      assert.ok(tree.size > 0, f);
    }
  });
});
