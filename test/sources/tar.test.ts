import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseTar, type TarEntry } from '../../src/sources/tar.js';
import type { Warning } from '../../src/util/errors.js';
import {
  type FixtureEntry,
  LONG_DIR,
  LONG_LINK_TARGET,
  LONG_NAME,
  LONG_NAME_PAX,
  paxRecords,
  sampleEntries,
  tarHeader,
  writeTar,
} from '../fixtures/deb-fixtures.js';
import { damageAt, expectVerdict, tarHotSpots, tarVerdict } from '../helpers/damage.js';
import { assertKjxError } from '../helpers/kjx-error.js';

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assertKjxError(e, 'DEB_INVALID');
    assert.match(e.message, pattern);
    return true;
  });
}

/** What a reader must return for a fixture entry. */
function expected(f: FixtureEntry): Omit<TarEntry, 'data'> & { data: string } {
  const device = f.type === 'char' || f.type === 'block';
  const data = f.type === 'file' ? String(f.data ?? '') : '';
  return {
    name: f.name,
    type: f.type,
    mode: f.mode ?? (f.type === 'dir' ? 0o755 : f.type === 'symlink' ? 0o777 : 0o644),
    uid: f.uid ?? 0,
    gid: f.gid ?? 0,
    mtime: f.mtime ?? 1700000000,
    size: Buffer.byteLength(data),
    linkname: f.type === 'symlink' || f.type === 'hardlink' ? (f.linkname ?? '') : '',
    devmajor: device ? (f.devmajor ?? 0) : 0,
    devminor: device ? (f.devminor ?? 0) : 0,
    data,
  };
}

function plain(entries: TarEntry[]): (Omit<TarEntry, 'data'> & { data: string })[] {
  return entries.map((e) => ({ ...e, data: e.data.toString() }));
}

const BASIC: FixtureEntry[] = [
  { name: './', type: 'dir' },
  { name: './a', type: 'file', data: 'hello' },
  { name: './b', type: 'symlink', linkname: 'a' },
];

describe('parseTar: reading', () => {
  it('round-trips every entry kind, modes, ids, GNU and pax long names', () => {
    const fixture = sampleEntries();
    assert.deepEqual(plain(parseTar(writeTar(fixture), 't.tar')), fixture.map(expected));
  });

  it('reads POSIX ustar with the prefix field for long names', () => {
    const name = `./usr/share/${'q'.repeat(90)}/${'r'.repeat(80)}`;
    const fixture: FixtureEntry[] = [{ name, type: 'file', data: 'x', long: 'prefix' }];
    assert.deepEqual(plain(parseTar(writeTar(fixture, { format: 'ustar' }), 't.tar')), fixture.map(expected));
  });

  it('reads pax long names and link names in a POSIX ustar archive', () => {
    const fixture: FixtureEntry[] = [
      { name: LONG_NAME_PAX, type: 'file', data: 'p', long: 'pax' },
      { name: './l', type: 'symlink', linkname: LONG_LINK_TARGET, long: 'pax' },
    ];
    assert.deepEqual(plain(parseTar(writeTar(fixture, { format: 'ustar' }), 't.tar')), fixture.map(expected));
  });

  it('reads v7 headers, where a directory is a regular entry ending in "/"', () => {
    const tar = Buffer.concat([
      tarHeader({ name: 'dir/', typeflag: '\0', format: 'v7', mode: 0o755 }),
      tarHeader({ name: 'dir/f', typeflag: '\0', format: 'v7', size: 1 }),
      Buffer.from('z'.padEnd(512, '\0')),
      Buffer.alloc(1024),
    ]);
    const entries = parseTar(tar, 't.tar');
    assert.deepEqual(
      entries.map((e) => [e.name, e.type, e.data.toString()]),
      [
        ['dir/', 'dir', ''],
        ['dir/f', 'file', 'z'],
      ],
    );
  });

  it('regression: a GNU long file name whose 100-byte header name ends in "/" is a file, not a dir', () => {
    // Real packages (libghc-*-dev, libjs-mathjax) have these; the header holds the
    // first 100 bytes of the name, which can end right after a slash.
    assert.equal(Buffer.byteLength(LONG_DIR), 100);
    const entries = parseTar(
      writeTar([{ name: LONG_NAME, type: 'file', data: 'after', long: 'gnu' }, ...BASIC]),
      't',
    );
    assert.equal(entries[0]!.name, LONG_NAME);
    assert.equal(entries[0]!.type, 'file');
    assert.equal(entries[0]!.data.toString(), 'after');
    assert.deepEqual(
      entries.slice(1).map((e) => e.name),
      BASIC.map((e) => e.name),
    );
  });

  it('regression: a long name whose 100-byte header copy cuts a UTF-8 character in two is read', () => {
    const name = `./usr/share/docs/${'\u00e9'.repeat(60)}`; // 2 bytes each: byte 100 splits one
    assert.equal(Buffer.from(name).subarray(0, 100).toString().endsWith('\ufffd'), true);
    for (const long of ['gnu', 'pax'] as const) {
      const [e] = parseTar(writeTar([{ name, type: 'file', data: 'x', long }]), 't');
      assert.equal(e!.name, name);
    }
  });

  it('reads GNU base-256 ids and negative times', () => {
    const [e] = parseTar(
      writeTar([{ name: 'f', type: 'file', base256: true, uid: 2 ** 40, gid: 65536, mtime: -1 }]),
      't',
    );
    assert.deepEqual([e!.uid, e!.gid, e!.mtime], [2 ** 40, 65536, -1]);
  });

  it('applies pax size, mtime (fractional), uid and gid, and global headers to every later entry', () => {
    const tar = writeTar(
      [
        { name: 'a', type: 'file', data: 'aaa', pax: { mtime: '1600000000.75', uid: '70000' } },
        { name: 'b', type: 'file', data: 'bbb', pax: { gid: '' } }, // empty value: back to the global value
      ],
      { globalPax: { gid: '4242', comment: 'ignored' } },
    );
    const [a, b] = parseTar(tar, 't');
    assert.deepEqual([a!.mtime, a!.uid, a!.gid], [1600000000, 70000, 4242]);
    assert.deepEqual([b!.mtime, b!.uid, b!.gid], [1700000000, 0, 4242]);
  });

  it('a pax size overrides the header size field', () => {
    const data = Buffer.from('0123456789');
    const tar = Buffer.concat([
      tarHeader({ name: 'PaxHeaders/a', typeflag: 'x', size: paxRecords({ size: '10' }).length }),
      Buffer.from(paxRecords({ size: '10' }).toString().padEnd(512, '\0')),
      tarHeader({ name: 'a', typeflag: '0', size: 0 }),
      Buffer.concat([data, Buffer.alloc(502)]),
      Buffer.alloc(1024),
    ]);
    const [e] = parseTar(tar, 't');
    assert.equal(e!.data.toString(), '0123456789');
    assert.equal(e!.size, 10);
  });

  it('accepts a historic signed checksum', () => {
    const h = tarHeader({ name: 'caf\u00e9', typeflag: '0' });
    // Recompute the checksum as signed chars, as some old tars did.
    h.fill(0x20, 148, 156);
    let signed = 0;
    for (const b of h) signed += b < 128 ? b : b - 256;
    h.write(`${signed.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    assert.equal(parseTar(Buffer.concat([h, Buffer.alloc(1024)]), 't')[0]!.name, 'caf\u00e9');
  });

  it('warns (TAR_NO_END) when the archive ends without zero blocks, like dpkg accepts', () => {
    const warnings: Warning[] = [];
    const entries = parseTar(writeTar(BASIC, { noEnd: true }), 't', { warn: (w) => warnings.push(w) });
    assert.equal(entries.length, 3);
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['TAR_NO_END'],
    );
  });

  it('returns file data as views into the input', () => {
    const tar = writeTar(BASIC);
    assert.equal(parseTar(tar, 't')[1]!.data.buffer, tar.buffer);
  });
});

describe('parseTar: refusing malformed archives', () => {
  it('refuses a corrupted header checksum, naming archive and offset', () => {
    const tar = writeTar(BASIC);
    tar[512 + 2] = tar[512 + 2]! ^ 0x01; // second header's name
    rejects(
      () => parseTar(tar, 'x.deb: data.tar'),
      /^x\.deb: data\.tar: bad header checksum .* at offset 512$/,
    );
  });

  it('refuses a non-octal numeric field', () => {
    const h = tarHeader({ name: 'a', typeflag: '0' });
    h.write('12x', 100, 'latin1');
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    rejects(() => parseTar(Buffer.concat([h, Buffer.alloc(1024)]), 't'), /mode field "12x.*" is not octal/);
  });

  it('refuses unknown entry types (deb(5): an error)', () => {
    for (const flag of ['S', 'V', 'D', 'M']) {
      const tar = Buffer.concat([tarHeader({ name: 'weird', typeflag: flag }), Buffer.alloc(1024)]);
      rejects(() => parseTar(tar, 't'), new RegExp(`entry "weird" has unsupported type '${flag}'`));
    }
  });

  it('refuses names that are not UTF-8', () => {
    const h = tarHeader({ name: 'ab', typeflag: '0' });
    h[1] = 0xff;
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    rejects(() => parseTar(Buffer.concat([h, Buffer.alloc(1024)]), 't'), /not valid UTF-8/);
  });

  it('refuses pax sparse files and malformed pax records', () => {
    rejects(
      () => parseTar(writeTar([{ name: 'a', type: 'file', pax: { 'GNU.sparse.major': '1' } }]), 't'),
      /sparse files are not supported/,
    );
    const bad = Buffer.from('99 path=a\n');
    const tar = Buffer.concat([
      tarHeader({ name: 'PaxHeaders/a', typeflag: 'x', size: bad.length }),
      Buffer.from(bad.toString().padEnd(512, '\0')),
      tarHeader({ name: 'a', typeflag: '0' }),
      Buffer.alloc(1024),
    ]);
    rejects(() => parseTar(tar, 't'), /malformed pax record/);
    rejects(() => parseTar(writeTar([{ name: 'a', type: 'file', pax: { uid: '-1' } }]), 't'), /pax uid "-1"/);
  });

  it('refuses an extended header that is not followed by an entry', () => {
    const meta = writeTar([{ name: LONG_NAME, type: 'file' }], { noEnd: true }).subarray(0, 1024);
    rejects(() => parseTar(meta, 't'), /extended header is not followed by an entry at offset 0/);
    rejects(
      () => parseTar(Buffer.concat([meta, Buffer.alloc(1024)]), 't'),
      /followed by the end of the archive/,
    );
  });

  it('refuses an entry with an empty name', () => {
    rejects(
      () => parseTar(Buffer.concat([tarHeader({ name: '', typeflag: '0' }), Buffer.alloc(1024)]), 't'),
      /empty name at offset 0/,
    );
  });

  it('refuses truncation inside a header or inside data, at every cut point', () => {
    const tar = writeTar(sampleEntries());
    const full = parseTar(tar, 't');
    // The first zero block ends the archive; what follows it is not read.
    const endOfArchive = tar.length - 512;
    for (let cut = 0; cut < tar.length; cut++) {
      if (cut >= endOfArchive) {
        assert.deepEqual(parseTar(tar.subarray(0, cut), 't'), full);
        continue;
      }
      if (cut % 512 !== 0) {
        rejects(() => parseTar(tar.subarray(0, cut), 't'), /^t: .* at offset \d+$/);
        continue;
      }
      // On a block boundary the archive may end between entries (dpkg accepts that);
      // then the result is a prefix of the full list, and a warning says so.
      try {
        const got = parseTar(tar.subarray(0, cut), 't', { warn: () => {} });
        assert.deepEqual(got, full.slice(0, got.length));
      } catch (e) {
        assertKjxError(e, 'DEB_INVALID');
      }
    }
  });

  it('property: a damaged byte is refused where tar checks it, and read back as written where it does not', () => {
    for (const format of ['gnu', 'ustar'] as const) {
      const tar = writeTar(sampleEntries(), { format, globalPax: { comment: 'applies to all' } });
      const good = parseTar(tar, 't');
      fc.assert(
        fc.property(damageAt(tar.length, tarHotSpots(tar)), fc.integer({ min: 0, max: 255 }), (at, value) => {
          const copy = Buffer.from(tar);
          copy[at] = value;
          expectVerdict(
            tarVerdict(tar, good, at, value),
            () => parseTar(copy, 't'),
            'DEB_INVALID',
            `${format}: byte ${at} = ${value}`,
          );
        }),
        { numRuns: 1500 },
      );
    }
  });
});
