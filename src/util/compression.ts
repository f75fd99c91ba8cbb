/**
 * The one compression module (STYLE habit 4): which formats kjx knows, how to tell
 * them from their magic bytes, how to write them, and how to read them with a cap.
 * Every compressed thing kjx writes or reads goes through here: the initramfs,
 * .deb members (deb(5)), image layers, kernel modules (`.ko.xz`, `.ko.zst`,
 * `.ko.gz`) and the payload of a bzImage.
 *
 * - gzip (RFC 1952; several concatenated members are allowed) runs in-process in
 *   node:zlib, whose `maxOutputLength` stops inflating at the cap;
 * - xz (tukaani.org/xz/xz-file-format.txt) and zstd (RFC 8878) run the host tools,
 *   both ways: no library on our list writes them with the options the kernel
 *   needs, and the in-process decoders inflate a whole stream before saying how
 *   big it is (xz) or copy their whole window per block, a window a hostile frame
 *   declares (fzstd). `xz -dc` and `zstd -dc` stream their output to us and are
 *   killed once it passes the cap (exec.ts runFilter), each with a decoder memory
 *   limit. zstd input is also walked frame by frame first, so a truncated input is
 *   named as such rather than by whatever the tool prints.
 *
 * Every input may come from elsewhere (a local .deb, an image given to `kjx
 * inspect`), and a few kilobytes can claim gigabytes: decompression always has a
 * budget (util/budget.ts), by default proportional to the input.
 */
import { gunzipSync, gzip } from 'node:zlib';
import { type Budget, charge, defaultBudget, newBudget, overBudget, room } from './budget.js';
import { type ErrorCode, isKjxError, KjxError } from './errors.js';
import { type FilterResult, run, runFilter, runFilterSync } from './exec.js';

/** The compressions kjx writes and reads (`compression:` in kjx.yaml, .deb members, image layers). */
export const COMPRESSIONS = ['gzip', 'zstd', 'xz', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** Formats the kernel can unpack that kjx recognizes but does not read in general. */
export type ForeignCompression = 'bzip2' | 'lzma' | 'lz4' | 'lzo';

/**
 * The one table of magic bytes. `lz4` is the legacy frame (`lz4 -l`), the one the
 * kernel's build writes; rootfs/bzimage.ts reads it for kernel payloads.
 */
const MAGIC: ReadonlyArray<{ format: Exclude<Compression, 'none'> | ForeignCompression; magic: number[] }> = [
  { format: 'gzip', magic: [0x1f, 0x8b] },
  { format: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd] },
  { format: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { format: 'bzip2', magic: [0x42, 0x5a, 0x68] },
  { format: 'lzma', magic: [0x5d, 0x00, 0x00] },
  { format: 'lz4', magic: [0x02, 0x21, 0x4c, 0x18] },
  { format: 'lzo', magic: [0x89, 0x4c, 0x5a, 0x4f] },
];

/** File name ending of each compression (`initramfs.cpio.zst`, `data.tar.xz`). */
export const EXTENSION: Readonly<Record<Compression, string>> = {
  gzip: '.gz',
  zstd: '.zst',
  xz: '.xz',
  none: '',
};

/** The compression a file name ending says (".gz", ".zst", ".xz", "" for none), or undefined. */
export function compressionOfExtension(ext: string): Compression | undefined {
  return COMPRESSIONS.find((c) => EXTENSION[c] === ext);
}

/** Every format the magic table knows in `data`, or 'none' when it starts with none of them. */
export function detectAnyCompression(data: Uint8Array): Compression | ForeignCompression {
  const hit = MAGIC.find(({ magic }) => data.length >= magic.length && magic.every((b, i) => data[i] === b));
  return hit?.format ?? 'none';
}

/** Which compression kjx reads `data` is in, from its magic bytes; 'none' if it is none of them. */
export function detectCompression(data: Uint8Array): Compression {
  const f = detectAnyCompression(data);
  return (COMPRESSIONS as readonly string[]).includes(f) ? (f as Compression) : 'none';
}

/** gzip member header byte 9 (OS); 3 = Unix. */
const GZIP_OS_UNIX = 3;

/** What to install when a host tool is missing (Debian package names). */
const TOOL_PACKAGE: Record<string, string> = { xz: 'xz-utils', zstd: 'zstd' };

function gzipAsync(data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gzip(data, { level: 6 }, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

/** Feed `data` to a host tool's stdin and return its stdout. */
async function compressWith(tool: string, args: string[], data: Buffer): Promise<Buffer> {
  try {
    return (await run('compressing the initramfs', tool, args, { input: data, binary: true })).stdoutBytes;
  } catch (e) {
    if (isKjxError(e) && e.code === 'HOST_TOOL_MISSING') {
      throw new KjxError('HOST_TOOL_MISSING', `${tool} is not installed (needed to compress the initramfs)`, {
        hint: `apt-get install ${TOOL_PACKAGE[tool] ?? tool}, or choose another compression`,
        cause: e,
      });
    }
    throw e;
  }
}

/**
 * Compress, in the flavours the Linux kernel's decompressors accept
 * (lib/decompress_*.c, lib/xz/). Deterministic for the same input and the same
 * tool/library versions:
 *
 * - gzip: node:zlib level 6; zlib writes mtime 0 and no file name, and we pin
 *   the OS byte to Unix so the header does not depend on the build host;
 * - xz: `xz --check=crc32 -T1 -6`. The kernel's XZ decoder knows CRC32 but not
 *   xz's default CRC64; -T1 keeps one block, so output does not vary with cores;
 * - zstd: `zstd -3 -T1`, fast and well within the kernel's window-size limit;
 * - none: `data` itself.
 *
 * A missing tool is HOST_TOOL_MISSING (with the package to install), a failing
 * one SUBPROCESS with its stderr.
 */
export async function compress(data: Buffer, format: Compression): Promise<Buffer> {
  switch (format) {
    case 'none':
      return data;
    case 'gzip': {
      const out = await gzipAsync(data);
      out[9] = GZIP_OS_UNIX;
      return out;
    }
    case 'xz':
      return compressWith('xz', ['--check=crc32', '-T1', '-6', '-c', '-q'], data);
    case 'zstd':
      return compressWith('zstd', ['-3', '-T1', '-c', '-q'], data);
  }
}

/** How decompression names its input and reports what is wrong with it. */
export interface DecompressOptions {
  /** What to call the data in messages (e.g. "x.deb: data.tar.xz"). */
  what: string;
  /** Code of the error for corrupt or truncated data (and of the default budget). */
  code: ErrorCode;
  hint?: string;
  /** The whole message for corrupt data (default: `what`, then what the decoder said). */
  corrupt?: string;
  /**
   * What the output may take: a Budget (charged with what comes out) or a number
   * of bytes; default `defaultLimit` of the input. Past it: the budget's error
   * (reason "over-budget"), raised while the data stream.
   */
  limit?: Budget | number;
}

/** Decoder memory the host tools may take: what xz -9 and zstd's default window limit need. */
const XZ_MEMLIMIT = '--memlimit-decompress=160MiB';
const ZSTD_MEMLIMIT = '--memory=128MB';

const TOOL_ARGS: Record<'xz' | 'zstd', [string, string[]]> = {
  xz: ['xz', ['--decompress', '--stdout', '--quiet', XZ_MEMLIMIT]],
  zstd: ['zstd', ['--decompress', '--stdout', '--quiet', ZSTD_MEMLIMIT]],
};

function budgetOf(data: Buffer, o: DecompressOptions): Budget {
  const hint = o.hint ?? '';
  if (typeof o.limit === 'object') return o.limit;
  if (typeof o.limit === 'number') return newBudget(o.what, o.limit, o.code, hint);
  return defaultBudget(o.what, data.length, o.code, hint);
}

/**
 * Decompress a whole buffer, synchronously (for readers that are: .deb members,
 * kernel modules), refusing output past the budget while it streams. A tool's
 * output is held twice while spawnSync returns it, so past the cap this costs up
 * to twice the cap; `decompress` does not.
 * @throws KjxError `o.code` naming `o.what` when the data is corrupt or truncated,
 *   the budget's code when the output would pass it, HOST_TOOL_MISSING
 */
export function decompressSync(data: Buffer, format: Compression, o: DecompressOptions): Buffer {
  if (format === 'none') return data;
  const budget = budgetOf(data, o);
  return bounded(format, budget, o, () => {
    if (format === 'gzip') return gunzipSync(data, { maxOutputLength: gzipCap(budget) });
    if (format === 'zstd') checkZstdFrames(data);
    const [tool, args] = TOOL_ARGS[format];
    return fromTool(runFilterSync(`decompressing ${o.what}`, tool, args, data, room(budget)), budget, o.what);
  });
}

/** `decompressSync` for callers that can wait (kjx inspect, image layers, kernels): at most the cap is held. */
export async function decompress(data: Buffer, format: Compression, o: DecompressOptions): Promise<Buffer> {
  if (format === 'none' || format === 'gzip') return decompressSync(data, format, o);
  const budget = budgetOf(data, o);
  if (format === 'zstd')
    bounded(format, budget, o, () => {
      checkZstdFrames(data);
      return Buffer.alloc(0);
    });
  const [tool, args] = TOOL_ARGS[format];
  let r: FilterResult;
  try {
    r = await runFilter(`decompressing ${o.what}`, tool, args, data, room(budget));
  } catch (cause) {
    return bounded(format, budget, o, () => {
      throw cause;
    });
  }
  return bounded(format, budget, o, () => fromTool(r, budget, o.what));
}

const BOMB_HINT = 'is it really an initramfs or an image layer? a few bytes that claim gigabytes are refused';

/**
 * Decompress gzip, zstd or xz (detected from the magic bytes); anything else is
 * returned as it is. Only the first format is undone: an initramfs made of an
 * uncompressed cpio followed by a compressed one is returned unchanged. Corrupt
 * data, or data in a format kjx only recognizes (bzip2, lzma, lz4, lzo), is
 * CPIO_INVALID naming `name`.
 *
 * Output is bounded while it streams: by `limit` when it is a Budget (charged
 * with what comes out) or a number of bytes, else by `defaultLimit` of the input.
 * Past it: the budget's error (reason "over-budget").
 */
export async function decompressAny(data: Buffer, name = 'image', limit?: number | Budget): Promise<Buffer> {
  const format = detectAnyCompression(data);
  const o: DecompressOptions = {
    what: name,
    code: 'CPIO_INVALID',
    hint: BOMB_HINT,
    corrupt: `${name}: ${format} data is corrupt or truncated`,
    ...(limit === undefined ? {} : { limit }),
  };
  if (format === 'none') {
    const budget = budgetOf(data, o);
    if (data.length > room(budget)) throw overBudget(budget, `holding ${data.length} bytes`);
    return data;
  }
  if (format === 'bzip2' || format === 'lzma' || format === 'lz4' || format === 'lzo') {
    throw new KjxError('CPIO_INVALID', `${name}: compressed with ${format}, which kjx does not read`, {
      hint: 'decompress it on the host first, or rebuild it with gzip, zstd or xz',
    });
  }
  return decompress(data, format, o);
}

function gzipCap(budget: Budget): number {
  return Math.min(room(budget), 2 ** 32);
}

function fromTool(r: FilterResult, budget: Budget, what: string): Buffer {
  if (r.overflow) throw overBudget(budget, `decompressing ${what}`);
  return r.stdout;
}

/** Run `decode`, turning what it throws into the caller's errors, and charge what it returns. */
function bounded(format: Compression, budget: Budget, o: DecompressOptions, decode: () => Buffer): Buffer {
  let out: Buffer;
  try {
    out = decode();
  } catch (cause) {
    if (isKjxError(cause) && (cause.reason === 'over-budget' || cause.code === 'HOST_TOOL_MISSING'))
      throw cause;
    if ((cause as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw overBudget(budget, `decompressing ${o.what}`);
    const hint = o.hint ? { hint: o.hint } : {};
    if (o.corrupt) throw new KjxError(o.code, o.corrupt, { cause, ...hint });
    const message = cause instanceof Error ? cause.message.split('\n').slice(-3).join(' ') : String(cause);
    throw new KjxError(o.code, `${o.what}: cannot decompress ${format} data: ${message}`, { cause, ...hint });
  }
  charge(budget, out.length, `decompressing ${o.what}`);
  return out;
}

const ZSTD_FRAME_MAGIC = 0xfd2fb528;

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
    if (magic !== ZSTD_FRAME_MAGIC) throw zstdError('bad frame magic', frameStart);
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

/** Rethrown by `bounded` with the caller's code and `what` in front. */
function zstdError(what: string, offset: number): Error {
  return new Error(`${what} (frame at offset ${offset})`);
}
