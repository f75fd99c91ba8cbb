import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Compression, decompress } from '../../src/sources/decompress.js';
import { isKjxError } from '../../src/util/errors.js';
import { compress, type FixtureCompression, hasXz, hasZstd } from '../fixtures/deb-fixtures.js';
import { needs } from '../helpers/prereq.js';

/** Formats whose test data need a host tool, skipped (failed under CI) without it. */
const SKIP: Record<FixtureCompression, string | false> = {
  gz: false,
  none: false,
  xz: needs('xz (makes the .xz test data)', !hasXz() && '`xz --version` does not run'),
  zst: needs('zstd (makes the .zst test data)', !hasZstd() && '`zstd --version` does not run'),
};

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isKjxError(e), `expected KjxError, got ${String(e)}`);
    assert.equal(e.code, 'DEB_INVALID');
    assert.match(e.message, pattern);
    return true;
  });
}

// Compressible text plus random bytes, so every format has real work to do.
const input = Buffer.concat([Buffer.from('hello deb '.repeat(5000)), randomBytes(3000)]);

for (const format of ['gz', 'xz', 'zst'] as const) {
  describe(`decompress ${format}`, { skip: SKIP[format] }, () => {
    const packed = compress(input, format);

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
            assert.ok(isKjxError(e) && e.code === 'DEB_INVALID', String(e));
          }
        }),
        { numRuns: 400 },
      );
    });
  });
}

describe('decompress none', () => {
  it('returns the input itself', () => {
    assert.equal(decompress(input, 'none', 'd'), input);
  });
});

describe('decompress zst framing', { skip: SKIP.zst }, () => {
  it('reads several concatenated frames and skippable frames', () => {
    const skippable = Buffer.alloc(12);
    skippable.writeUInt32LE(0x184d2a50, 0);
    skippable.writeUInt32LE(4, 4);
    const packed = Buffer.concat([
      compress(Buffer.from('ab'), 'zst'),
      skippable,
      compress(Buffer.from('cd'), 'zst'),
    ]);
    assert.equal(decompress(packed, 'zst', 'd').toString(), 'abcd');
  });

  it('regression: an input cut right before the content checksum is refused', () => {
    // fzstd alone returns the full output here, so truncation would go unnoticed.
    const packed = compress(input, 'zst');
    rejects(() => decompress(packed.subarray(0, packed.length - 4), 'zst', 'd'), /truncated frame/);
  });

  it('regression: a frame whose content checksum does not match its data is refused', () => {
    // random bytes do not compress: zstd stores them as a raw block, which decodes
    // whatever it holds, so only the checksum can tell
    const data = randomBytes(1000);
    const packed = compress(data, 'zst');
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
    rejects(() => decompress(Buffer.alloc(0), 'zst' as Compression, 'd'), /empty input/);
  });
});
