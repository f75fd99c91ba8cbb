import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { readDeb } from '../../src/sources/deb.js';
import { stageDeb } from '../../src/sources/stage.js';
import { isKjxError } from '../../src/util/errors.js';
import {
  buildDeb,
  compress,
  debMembers,
  type FixtureCompression,
  hasZstd,
  sampleEntries,
  writeAr,
  writeTar,
} from '../fixtures/deb-fixtures.js';

const NO_ZSTD = hasZstd() ? false : 'the host has no `zstd` binary to make .zst test data';
const FORMATS: FixtureCompression[] = ['gz', 'xz', 'zst', 'none'];

function rejects(fn: () => unknown, pattern: RegExp, code = 'DEB_INVALID'): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isKjxError(e), `expected KjxError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
}

function isDebInvalid(e: unknown): boolean {
  return isKjxError(e) && e.code === 'DEB_INVALID';
}

describe('readDeb', () => {
  for (const format of FORMATS) {
    it(`reads control fields and data entries (control and data ${format})`, {
      skip: format === 'zst' && NO_ZSTD,
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
      skip: format === 'zst' && NO_ZSTD,
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
      skip: format === 'zst' && NO_ZSTD,
    }, () => {
      const [bin, control, data] = debMembers({ entries: sampleEntries(), dataCompression: format });
      fc.assert(
        fc.property(fc.nat({ max: data!.data.length - 1 }), (cut) => {
          const deb = writeAr([bin!, control!, { name: data!.name, data: data!.data.subarray(0, cut) }]);
          try {
            // An uncompressed tar cut on a block boundary between entries, or after its
            // first zero block, is a valid tar (dpkg reads it too); all else is refused.
            const { dataEntries } = readDeb(deb, 'h.deb');
            const acceptable = format === 'none' && (cut % 512 === 0 || cut >= data!.data.length - 512);
            assert.ok(acceptable, `cut ${cut} was accepted`);
            assert.ok(dataEntries.length <= sampleEntries().length);
          } catch (e) {
            assert.ok(isDebInvalid(e), `unexpected ${String(e)}`);
          }
        }),
        { numRuns: 300 },
      );
    });
  }

  it('property: random byte damage gives a result or DEB_INVALID/DEB_UNSAFE, never another error', () => {
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
      { numRuns: 1500 },
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
  const dir = mkdtempSync(join(tmpdir(), 'kjx-deb-test-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    execFileSync('apt-get', ['download', 'busybox-static'], { cwd: dir, stdio: 'pipe', timeout: 120_000 });
    const got = readdirSync(dir).find((f) => f.endsWith('.deb'));
    if (got) return { path: join(dir, got), cleanup };
    cleanup();
    return 'apt-get download busybox-static produced no .deb';
  } catch (e) {
    cleanup();
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim().split('\n').pop();
    return `no busybox .deb in ${cache} and apt-get download busybox-static failed: ${stderr ?? String(e)}`;
  }
}

describe('real Debian packages', () => {
  const found = findRealBusybox();

  it('reads and stages busybox: /bin/busybox is there with mode 0755', {
    skip: typeof found === 'string' && found,
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
    sample = all.filter((_, i) => i % step === 0).slice(0, 15);
  } catch {
    // no cache: the test below is skipped
  }
  it(`reads and stages a sample of cached .debs (${sample.length})`, {
    skip: sample.length === 0 && `no .deb files in ${cache}`,
  }, () => {
    for (const f of sample) {
      const { control, dataEntries } = readDeb(readFileSync(join(cache, f)), f);
      const tree = stageDeb(dataEntries, { name: control.Package!, version: control.Version! });
      assert.ok(tree.size > 0, f);
    }
  });
});
