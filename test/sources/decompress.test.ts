import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { type Compression, decompress } from '../../src/sources/decompress.js';
import { isKjxError } from '../../src/util/errors.js';
import { compress, hasZstd } from '../fixtures/deb-fixtures.js';

const NO_ZSTD = hasZstd() ? false : 'the host has no `zstd` binary to make .zst test data';

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
  describe(`decompress ${format}`, { skip: format === 'zst' && NO_ZSTD }, () => {
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
  });
}

describe('decompress none', () => {
  it('returns the input itself', () => {
    assert.equal(decompress(input, 'none', 'd'), input);
  });
});

describe('decompress zst framing', { skip: NO_ZSTD }, () => {
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

  it('refuses an empty input', () => {
    rejects(() => decompress(Buffer.alloc(0), 'zst' as Compression, 'd'), /empty input/);
  });
});
