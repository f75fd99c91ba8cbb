import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { xz } from '@napi-rs/lzma';
import { execa } from 'execa';
import fc from 'fast-check';
import { readCpio, writeCpio } from '../../src/image/cpio.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import { ensureParents, mk, newTree } from '../../src/rootfs/tree.js';
import {
  type Compression,
  compress,
  compressionOfExtension,
  decompressAny,
  decompressSync,
  detectAnyCompression,
  detectCompression,
  EXTENSION,
} from '../../src/util/compression.js';
import {
  type FixtureCompression,
  compress as fixtureCompress,
  hasXz,
  hasZstd,
} from '../fixtures/deb-fixtures.js';
import { assertKjxError, kjxError, throwsKjx } from '../helpers/kjx-error.js';
import { needs, needsTool } from '../helpers/prereq.js';

const NO_XZ = needsTool('xz');
const NO_ZSTD = needsTool('zstd');
const HAS_XZ = NO_XZ === false;
const HAS_ZSTD = NO_ZSTD === false;

const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'kjx-compress-'));
  tmpDirs.push(d);
  return d;
}
after(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

/** A compressible initramfs: text-like files plus some random bytes. */
function sampleImage(): Buffer {
  const src = { kind: 'generated', by: 'test' } as const;
  const t = newTree();
  for (let i = 0; i < 50; i++) t.set(`/etc/f${i}`, mk.file(`/etc/f${i}`, `line ${i}\n`.repeat(200), src));
  t.set('/bin/blob', mk.file('/bin/blob', randomBytes(20_000), src, 0o755));
  t.set('/dev/console', mk.char('/dev/console', 5, 1, src));
  ensureParents(t, src);
  return writeCpio(makeReproducible(t, 1_700_000_000));
}

describe('detectCompression', () => {
  it('recognizes magic bytes', () => {
    assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
    assert.equal(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0])), 'xz');
    assert.equal(detectCompression(Buffer.from('070701')), 'none');
    assert.equal(detectCompression(Buffer.alloc(0)), 'none');
    assert.equal(detectCompression(Buffer.from([0x1f])), 'none');
  });

  it('names the formats it only recognizes, and reads none of them as a format kjx reads', () => {
    const foreign: [string, number[]][] = [
      ['bzip2', [0x42, 0x5a, 0x68, 0x39]],
      ['lzma', [0x5d, 0x00, 0x00, 0x80]],
      ['lz4', [0x02, 0x21, 0x4c, 0x18, 0]],
      ['lzo', [0x89, 0x4c, 0x5a, 0x4f, 0]],
    ];
    for (const [name, bytes] of foreign) {
      assert.equal(detectAnyCompression(Buffer.from(bytes)), name);
      assert.equal(detectCompression(Buffer.from(bytes)), 'none', name);
    }
    assert.equal(detectAnyCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
  });

  it('file name endings map both ways', () => {
    for (const c of ['gzip', 'zstd', 'xz', 'none'] as const)
      assert.equal(compressionOfExtension(EXTENSION[c]), c);
    assert.equal(compressionOfExtension('.bz2'), undefined);
  });
});

describe('compress', () => {
  const image = sampleImage();

  it('none returns the input', async () => {
    assert.equal(await compress(image, 'none'), image);
  });

  it('gzip is deterministic: mtime 0, Unix OS byte, identical bytes twice', async () => {
    const a = await compress(image, 'gzip');
    const b = await compress(image, 'gzip');
    assert.ok(a.equals(b));
    assert.equal(detectCompression(a), 'gzip');
    assert.equal(a.readUInt32LE(4), 0, 'MTIME');
    assert.equal(a[3], 0, 'FLG: no name, no comment');
    assert.equal(a[9], 3, 'OS = Unix');
    assert.ok(a.length < image.length);
    assert.ok((await decompressAny(a)).equals(image));
    assert.equal(readCpio(await decompressAny(a), 'x').length > 50, true);
  });

  it('xz writes CRC32 check, decompresses with xz -t / xz -dc and in-process', {
    skip: NO_XZ,
  }, async () => {
    const a = await compress(image, 'xz');
    assert.equal(detectCompression(a), 'xz');
    // Stream header: 6 magic bytes, then stream flags 0x00 <check type>; 0x01 = CRC32.
    assert.equal(a[6], 0x00);
    assert.equal(a[7], 0x01, 'check type CRC32 (the kernel has no CRC64)');
    // The stream footer repeats the flags before its "YZ" magic.
    assert.equal(a[a.length - 3], 0x01);
    assert.equal(a.subarray(-2).toString('latin1'), 'YZ');
    const file = join(tmp(), 'initrd.xz');
    writeFileSync(file, a);
    await execa('xz', ['-t', file]);
    const listed = await execa('xz', ['--robot', '--list', file]);
    assert.match(listed.stdout, /^totals\t.*\tCRC32\t/m);
    const { stdout } = await execa('xz', ['-dc', file], { encoding: 'buffer' });
    assert.ok(Buffer.from(stdout).equals(image));
    assert.ok((await decompressAny(a)).equals(image));
    assert.ok((await compress(image, 'xz')).equals(a), 'deterministic');
  });

  it('zstd round-trips, also through the zstd tool', {
    skip: NO_ZSTD,
  }, async () => {
    const a = await compress(image, 'zstd');
    assert.equal(detectCompression(a), 'zstd');
    assert.ok((await decompressAny(a)).equals(image));
    const { stdout } = await execa('zstd', ['-dc', '-q'], { input: a, encoding: 'buffer' });
    assert.ok(Buffer.from(stdout).equals(image));
    assert.ok((await compress(image, 'zstd')).equals(a), 'deterministic');
  });

  it('compresses empty input in every format', async () => {
    const formats: Compression[] = ['gzip', 'none'];
    if (HAS_XZ) formats.push('xz');
    if (HAS_ZSTD) formats.push('zstd');
    for (const f of formats) {
      const out = await compress(Buffer.alloc(0), f);
      assert.equal((await decompressAny(out)).length, 0, f);
    }
  });

  it('a missing host tool is HOST_TOOL_MISSING with an apt-get hint', async () => {
    const saved = process.env.PATH;
    process.env.PATH = tmp(); // an empty directory: no xz, no zstd
    try {
      for (const [format, pkg] of [
        ['xz', 'xz-utils'],
        ['zstd', 'zstd'],
      ] as const) {
        await assert.rejects(
          compress(Buffer.from('x'), format),
          kjxError('HOST_TOOL_MISSING', { hint: new RegExp(`apt-get install ${pkg}`) }),
        );
      }
    } finally {
      process.env.PATH = saved;
    }
  });

  it('a failing host tool is SUBPROCESS naming the command and its stderr', async () => {
    const dir = tmp();
    const fake = join(dir, 'xz');
    writeFileSync(fake, '#!/bin/sh\necho "xz: out of cheese" >&2\nexit 3\n', { mode: 0o755 });
    const saved = process.env.PATH;
    process.env.PATH = `${dir}:${saved}`;
    try {
      await assert.rejects(
        compress(Buffer.from('x'), 'xz'),
        kjxError('SUBPROCESS', /xz --check=crc32 -T1 -6.*exit code 3.*\n.*out of cheese/s),
      );
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe('decompressAny', () => {
  it('returns uncompressed data as it is', async () => {
    const d = Buffer.from('070701...');
    assert.equal(await decompressAny(d), d);
  });

  it('reads xz written by the in-process encoder too', async () => {
    const d = Buffer.from('hello '.repeat(1000));
    assert.ok((await decompressAny(await xz.compress(d))).equals(d));
  });

  it('corrupt or unsupported data is CPIO_INVALID naming the image', async () => {
    const gz = await compress(Buffer.from('hello '.repeat(1000)), 'gzip');
    const cases: [string, Buffer, RegExp][] = [
      ['truncated gzip', gz.subarray(0, gz.length - 10), /initrd.img: gzip data is corrupt/],
      ['zstd magic only', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]), /zstd data is corrupt/],
      ['xz magic only', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 9, 9]), /xz data is corrupt/],
      ['bzip2', Buffer.from('BZh91AY&SY'), /compressed with bzip2/],
      ['lz4', Buffer.from([0x02, 0x21, 0x4c, 0x18, 1, 2]), /compressed with lz4, which kjx does not read/],
    ];
    for (const [what, data, re] of cases) {
      await assert.rejects(decompressAny(data, 'initrd.img'), kjxError('CPIO_INVALID', re, what));
    }
  });

  it('output past maxBytes is refused for every format; up to it passes', async () => {
    const big = Buffer.alloc(1 << 20, 'a');
    const formats: Compression[] = ['gzip', 'none'];
    if (HAS_ZSTD) formats.push('zstd');
    if (HAS_XZ) formats.push('xz');
    for (const f of formats) {
      const packed = await compress(big, f);
      await assert.rejects(
        decompressAny(packed, 'layer.tar', big.length - 1),
        {
          code: 'CPIO_INVALID',
          reason: 'over-budget',
          message:
            f === 'none'
              ? /^layer\.tar: holding 1048576 bytes would take more than the 1048575 bytes kjx allows/
              : /^layer\.tar: decompressing layer\.tar would take more than the 1048575 bytes kjx allows/,
        },
        f,
      );
      assert.ok((await decompressAny(packed, 'layer.tar', big.length)).equals(big), f);
    }
  });
});

/** Formats whose test data need a host tool, skipped (failed under CI) without it. */
const SKIP: Record<FixtureCompression, string | false> = {
  gz: false,
  none: false,
  xz: needs('xz (makes the .xz test data)', !hasXz() && '`xz --version` does not run'),
  zst: needs('zstd (makes the .zst test data)', !hasZstd() && '`zstd --version` does not run'),
};

/** The fixtures' names for the formats (.deb member endings) and ours. */
const FORMAT: Record<FixtureCompression, Compression> = { gz: 'gzip', xz: 'xz', zst: 'zstd', none: 'none' };

/** decompressSync as the .deb reader calls it. */
function decompress(data: Buffer, format: FixtureCompression, what: string): Buffer {
  return decompressSync(data, FORMAT[format], { what, code: 'DEB_INVALID' });
}

function rejects(fn: () => unknown, pattern: RegExp): void {
  throwsKjx(fn, 'DEB_INVALID', pattern);
}

// Compressible text plus random bytes, so every format has real work to do.
const input = Buffer.concat([Buffer.from('hello deb '.repeat(5000)), randomBytes(3000)]);

for (const format of ['gz', 'xz', 'zst'] as const) {
  describe(`decompressSync ${format}`, { skip: SKIP[format] }, () => {
    const packed = fixtureCompress(input, format);

    it('round-trips', () => {
      assert.ok(decompress(packed, format, 'd').equals(input));
    });

    it('refuses truncation at many cut points, naming what it read', () => {
      const step = Math.max(1, Math.floor(packed.length / 300));
      for (let cut = 0; cut < packed.length; cut += step) {
        rejects(() => decompress(packed.subarray(0, cut), format, 'x.deb: data.tar'), /^x\.deb: data\.tar: /);
      }
      // The last bytes hold checksums and trailers; a cut there must fail too.
      for (let cut = packed.length - 8; cut < packed.length; cut++) {
        rejects(() => decompress(packed.subarray(0, cut), format, 'x.deb: data.tar'), /^x\.deb: data\.tar: /);
      }
    });

    it('refuses garbage', () => {
      rejects(() => decompress(Buffer.from('definitely not compressed'), format, 'what'), /^what: /);
    });

    it('property: a damaged byte is refused, or the format does not check it and the data come out as written', () => {
      // Not checked: gzip's MTIME, XFL, OS and the FTEXT flag, and in every format an
      // encoding that decodes to the same bytes (a Huffman table entry no symbol uses,
      // padding bits, a larger window). Everything else is covered by a CRC32 (gzip),
      // CRC64 (xz, as dpkg-deb writes it) or XXH64 (zstd --check).
      fc.assert(
        fc.property(fc.nat({ max: packed.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, value) => {
          const copy = Buffer.from(packed);
          copy[at] = value;
          try {
            const out = decompress(copy, format, 'd');
            assert.ok(out.equals(input), `byte ${at} = ${value} was accepted with other data`);
          } catch (e) {
            assertKjxError(e, 'DEB_INVALID');
          }
        }),
        { numRuns: 400 },
      );
    });
  });
}

describe('decompressSync none', () => {
  it('returns the input itself', () => {
    assert.equal(decompress(input, 'none', 'd'), input);
  });
});

describe('decompressSync zstd framing', { skip: SKIP.zst }, () => {
  it('reads several concatenated frames and skippable frames', () => {
    const skippable = Buffer.alloc(12);
    skippable.writeUInt32LE(0x184d2a50, 0);
    skippable.writeUInt32LE(4, 4);
    const packed = Buffer.concat([
      fixtureCompress(Buffer.from('ab'), 'zst'),
      skippable,
      fixtureCompress(Buffer.from('cd'), 'zst'),
    ]);
    assert.equal(decompress(packed, 'zst', 'd').toString(), 'abcd');
  });

  it('regression: an input cut right before the content checksum is refused', () => {
    // fzstd alone returns the full output here, so truncation would go unnoticed.
    const packed = fixtureCompress(input, 'zst');
    rejects(() => decompress(packed.subarray(0, packed.length - 4), 'zst', 'd'), /truncated frame/);
  });

  it('regression: a frame whose content checksum does not match its data is refused', () => {
    // random bytes do not compress: zstd stores them as a raw block, which decodes
    // whatever it holds, so only the checksum can tell
    const data = randomBytes(1000);
    const packed = fixtureCompress(data, 'zst');
    const copy = Buffer.from(packed);
    copy[packed.length >> 1]! ^= 0x01;
    rejects(
      () => decompress(copy, 'zst', 'x.deb: data.tar.zst'),
      // the zstd tool checks it ("Restored data doesn't match checksum")
      /^x\.deb: data\.tar\.zst: .*match.* checksum/,
    );
    assert.ok(decompress(packed, 'zst', 'd').equals(data));
  });

  it('refuses an empty input', () => {
    rejects(() => decompress(Buffer.alloc(0), 'zst', 'd'), /empty input/);
  });
});
