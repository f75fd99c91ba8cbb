/**
 * Adapter over the decompressors a .deb member may need (deb(5): gzip, xz, zstd or
 * none). Third-party code is funnelled through this one module so that moving to a
 * Node built-in later (node:zlib has zstd from Node 22.15) touches only this file.
 *
 * - gzip: node:zlib (RFC 1952; several concatenated members are allowed).
 * - xz: @napi-rs/lzma, a binding to the Rust lzma-rs crate (xz file format spec,
 *   tukaani.org/xz/xz-file-format.txt).
 * - zstd: fzstd, a pure JS decoder (RFC 8878). fzstd returns what it has when the
 *   input stops on a frame's end and neither checks the content checksum nor
 *   rejects an empty input, so we walk the frame structure first (below) to make
 *   sure the input ends exactly after a complete frame, decode frame by frame, and
 *   check each frame's content checksum (XXH64) where it has one.
 */
import { gunzipSync } from 'node:zlib';
import { xz } from '@napi-rs/lzma';
import { decompress as zstdDecompress } from 'fzstd';
import { KjxError } from '../util/errors.js';
import { xxh64 } from '../util/xxh64.js';

/** Compression of a .deb member, from its name's extension ("none" for plain `.tar`). */
export type Compression = 'gz' | 'xz' | 'zst' | 'none';

/**
 * Decompress a whole buffer.
 *
 * @param data the compressed bytes
 * @param format which decoder to use; "none" returns `data` itself
 * @param what what to call the data in error messages (e.g. "x.deb: data.tar.xz")
 * @throws KjxError DEB_INVALID naming `what` when the data is corrupt or truncated
 */
export function decompress(data: Buffer, format: Compression, what: string): Buffer {
  try {
    switch (format) {
      case 'none':
        return data;
      case 'gz':
        return gunzipSync(data);
      case 'xz':
        return xz.decompressSync(data);
      case 'zst': {
        const frames = checkZstdFrames(data);
        const parts = frames.map((f) => {
          const out = zstdDecompress(data.subarray(f.start, f.end));
          if (f.checksum !== undefined && xxh64(out)[1] !== f.checksum) {
            throw zstdError('content checksum does not match the data', f.start);
          }
          return out;
        });
        const one = parts[0];
        return parts.length === 1 && one
          ? Buffer.from(one.buffer, one.byteOffset, one.byteLength)
          : Buffer.concat(parts);
      }
    }
  } catch (cause) {
    if (cause instanceof KjxError) {
      throw new KjxError('DEB_INVALID', `${what}: ${cause.message}`, { cause, hint: HINT });
    }
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new KjxError('DEB_INVALID', `${what}: cannot decompress ${format} data: ${message}`, {
      cause,
      hint: HINT,
    });
  }
}

const HINT = 'the package is damaged or truncated; download it again';

const ZSTD_MAGIC = 0xfd2fb528;

/** Where a zstd frame is in the input, and its content checksum (low 32 bits of XXH64) if it has one. */
interface ZstdFrame {
  start: number;
  end: number;
  checksum: number | undefined;
}

/**
 * Walk zstd frames (RFC 8878 section 3.1) without decoding them: every frame and
 * block must be complete and the input must end right after the last frame.
 * Returns the frames that hold data (skippable frames are left out).
 */
function checkZstdFrames(data: Buffer): ZstdFrame[] {
  if (data.length === 0) throw zstdError('empty input', 0);
  const frames: ZstdFrame[] = [];
  let off = 0;
  while (off < data.length) {
    const frameStart = off;
    need(data, off, 4, frameStart);
    const magic = data.readUInt32LE(off);
    off += 4;
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      // Skippable frame: 4-byte size, then that many bytes of user data.
      need(data, off, 4, frameStart);
      off += 4 + data.readUInt32LE(off);
      if (off > data.length) throw zstdError('truncated skippable frame', frameStart);
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw zstdError('bad frame magic', frameStart);
    need(data, off, 1, frameStart);
    const fhd = data[off]!;
    off += 1;
    const fcsFlag = fhd >> 6;
    const singleSegment = (fhd >> 5) & 1;
    const hasChecksum = (fhd >> 2) & 1;
    const dictFlag = fhd & 3;
    if (fhd & 0x08) throw zstdError('reserved bit set in frame header', frameStart);
    const headerRest =
      (singleSegment ? 0 : 1) + [0, 1, 2, 4][dictFlag]! + [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
    need(data, off, headerRest, frameStart);
    off += headerRest;
    for (;;) {
      need(data, off, 3, frameStart);
      const bh = data[off]! | (data[off + 1]! << 8) | (data[off + 2]! << 16);
      off += 3;
      const last = bh & 1;
      const type = (bh >> 1) & 3;
      const size = bh >>> 3;
      if (type === 3) throw zstdError('reserved block type', off - 3);
      // An RLE block stores one byte that is repeated `size` times.
      const stored = type === 1 ? 1 : size;
      need(data, off, stored, frameStart);
      off += stored;
      if (last) break;
    }
    let checksum: number | undefined;
    if (hasChecksum) {
      need(data, off, 4, frameStart);
      checksum = data.readUInt32LE(off);
      off += 4;
    }
    frames.push({ start: frameStart, end: off, checksum });
  }
  return frames;
}

function need(data: Buffer, off: number, n: number, frameStart: number): void {
  if (off + n > data.length) throw zstdError('truncated frame', frameStart);
}

function zstdError(what: string, offset: number): KjxError {
  return new KjxError('DEB_INVALID', `cannot decompress zst data: ${what} (frame at offset ${offset})`);
}
