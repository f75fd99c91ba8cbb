/**
 * Adapter over the decompressors a .deb member, an initramfs or an image layer may
 * need (deb(5): gzip, xz, zstd or none), with a cap that holds while the data
 * stream: every input here may come from elsewhere (a local .deb, an image given
 * to `kjx inspect`), and a few kilobytes can claim gigabytes.
 *
 * - gzip: node:zlib (RFC 1952; several concatenated members are allowed), whose
 *   `maxOutputLength` stops inflating at the cap.
 * - xz: the host's `xz -dc` (xz file format spec, tukaani.org/xz/xz-file-format.txt)
 *   and zstd: the host's `zstd -dc` (RFC 8878), each killed once its output passes
 *   the cap (exec.ts runFilter, runFilterSync) and each with a decoder memory limit. The
 *   in-process libraries on our list inflate a whole stream before saying how big
 *   it is (xz), or copy their whole window per block, a window a hostile frame
 *   declares (fzstd).
 * - zstd input is also walked frame by frame first (below), so a truncated input is
 *   named as such rather than by whatever the tool prints.
 */
import { gunzipSync } from 'node:zlib';
import { type Budget, charge, defaultBudget, overBudget, room } from '../util/budget.js';
import { type ErrorCode, isKjxError, KjxError } from '../util/errors.js';
import { type FilterResult, runFilter, runFilterSync } from '../util/exec.js';

/** Compression of a .deb member, from its name's extension ("none" for plain `.tar`). */
export type Compression = 'gz' | 'xz' | 'zst' | 'none';

const HINT = 'the package is damaged or truncated; download it again';
/** Decoder memory the host tools may take: what xz -9 and zstd's default window limit need. */
const XZ_MEMLIMIT = '--memlimit-decompress=160MiB';
const ZSTD_MEMLIMIT = '--memory=128MB';

/**
 * Decompress a whole buffer, refusing output past the budget while it streams.
 *
 * @param data the compressed bytes
 * @param format which decoder to use; "none" returns `data` itself
 * @param what what to call the data in error messages (e.g. "x.deb: data.tar.xz")
 * @param budget what the output may take; default: `defaultLimit` of the input
 * @throws KjxError DEB_INVALID naming `what` when the data is corrupt or truncated,
 *   the budget's code when the output would pass it
 */
export function decompress(data: Buffer, format: Compression, what: string, budget?: Budget): Buffer {
  return inflate(data, format, what, budget ?? defaultBudget(what, data.length, 'DEB_INVALID', HINT), {
    code: 'DEB_INVALID',
    hint: HINT,
  });
}

interface InflateErrors {
  code: ErrorCode;
  hint?: string;
  /** The whole message for corrupt data (default: what the decoder said). */
  corrupt?: string;
}

const TOOL_ARGS: Record<'xz' | 'zst', [string, string[]]> = {
  xz: ['xz', ['--decompress', '--stdout', '--quiet', XZ_MEMLIMIT]],
  zst: ['zstd', ['--decompress', '--stdout', '--quiet', ZSTD_MEMLIMIT]],
};

/**
 * The bounded decompression, synchronous (for .deb reading, which is): a tool's
 * output is held twice while spawnSync returns it, so past the cap this costs up
 * to twice the cap; `inflateAsync` does not.
 */
export function inflate(
  data: Buffer,
  format: Compression,
  what: string,
  budget: Budget,
  errors: InflateErrors,
): Buffer {
  if (format === 'none') return data;
  return bounded(format, what, budget, errors, () => {
    if (format === 'gz') return gunzipSync(data, { maxOutputLength: gzipCap(budget) });
    if (format === 'zst') checkZstdFrames(data);
    const [tool, args] = TOOL_ARGS[format];
    return fromTool(runFilterSync(`decompressing ${what}`, tool, args, data, room(budget)), budget, what);
  });
}

/** `inflate` for callers that can wait (kjx inspect, image layers): at most the cap is held. */
export async function inflateAsync(
  data: Buffer,
  format: Compression,
  what: string,
  budget: Budget,
  errors: InflateErrors,
): Promise<Buffer> {
  if (format === 'none') return data;
  if (format === 'gz') return inflate(data, format, what, budget, errors);
  if (format === 'zst')
    bounded(format, what, budget, errors, () => {
      checkZstdFrames(data);
      return Buffer.alloc(0);
    });
  const [tool, args] = TOOL_ARGS[format];
  let r: FilterResult;
  try {
    r = await runFilter(`decompressing ${what}`, tool, args, data, room(budget));
  } catch (cause) {
    return bounded(format, what, budget, errors, () => {
      throw cause;
    });
  }
  return bounded(format, what, budget, errors, () => fromTool(r, budget, what));
}

function gzipCap(budget: Budget): number {
  return Math.min(room(budget), 2 ** 32);
}

function fromTool(r: FilterResult, budget: Budget, what: string): Buffer {
  if (r.overflow) throw overBudget(budget, `decompressing ${what}`);
  return r.stdout;
}

/** Run `decode`, turning what it throws into the caller's errors, and charge what it returns. */
function bounded(
  format: Compression,
  what: string,
  budget: Budget,
  errors: InflateErrors,
  decode: () => Buffer,
): Buffer {
  let out: Buffer;
  try {
    out = decode();
  } catch (cause) {
    if (isKjxError(cause) && (cause.reason === 'over-budget' || cause.code === 'HOST_TOOL_MISSING'))
      throw cause;
    if ((cause as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw overBudget(budget, `decompressing ${what}`);
    const hint = errors.hint ? { hint: errors.hint } : {};
    if (errors.corrupt) throw new KjxError(errors.code, errors.corrupt, { cause, ...hint });
    const message = cause instanceof Error ? cause.message.split('\n').slice(-3).join(' ') : String(cause);
    throw new KjxError(
      errors.code,
      `${what}: cannot decompress ${format} data: ${message.replace(/^cannot decompress zst data: /, '')}`,
      { cause, ...hint },
    );
  }
  charge(budget, out.length, `decompressing ${what}`);
  return out;
}

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * Walk zstd frames (RFC 8878 section 3.1) without decoding them: every frame and
 * block must be complete and the input must end right after the last frame.
 */
function checkZstdFrames(data: Buffer): void {
  if (data.length === 0) throw zstdError('empty input', 0);
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
    if (hasChecksum) {
      need(data, off, 4, frameStart);
      off += 4;
    }
  }
}

function need(data: Buffer, off: number, n: number, frameStart: number): void {
  if (off + n > data.length) throw zstdError('truncated frame', frameStart);
}

function zstdError(what: string, offset: number): KjxError {
  return new KjxError('DEB_INVALID', `cannot decompress zst data: ${what} (frame at offset ${offset})`);
}
