/**
 * Compression of initramfs images: gzip (RFC 1952), zstd (RFC 8878) and xz
 * (tukaani.org/xz/xz-file-format.txt), in the flavours the Linux kernel's
 * decompressors accept (lib/decompress_*.c, lib/xz/).
 *
 * The one adapter for compression libraries and tools (STYLE habit 4): gzip runs
 * in-process; xz and zstd compression run the host tools, because no Node library
 * on our list writes them with the options the kernel needs. Decompression is the
 * bounded one of sources/decompress.ts: images read back come from elsewhere.
 */
import { gzip } from 'node:zlib';
import { inflateAsync } from '../sources/decompress.js';
import { type Budget, defaultBudget, newBudget, overBudget, room } from '../util/budget.js';
import { isKjxError, KjxError } from '../util/errors.js';
import { run } from '../util/exec.js';

/** The compressions kjx writes and reads. */
export type Compression = 'gzip' | 'zstd' | 'xz' | 'none';

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
async function runFilter(tool: string, args: string[], data: Buffer): Promise<Buffer> {
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
 * Compress an initramfs image. Deterministic for the same input and the same
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
      return runFilter('xz', ['--check=crc32', '-T1', '-6', '-c', '-q'], data);
    case 'zstd':
      return runFilter('zstd', ['-3', '-T1', '-c', '-q'], data);
  }
}

const startsWith = (data: Buffer, magic: readonly number[]): boolean =>
  data.length >= magic.length && magic.every((b, i) => data[i] === b);

const GZIP_MAGIC = [0x1f, 0x8b] as const;
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd] as const;
const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] as const;

/** Formats the kernel can boot but kjx does not read; named in the error. */
const UNSUPPORTED: ReadonlyArray<{ name: string; magic: readonly number[] }> = [
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68] },
  { name: 'lzma', magic: [0x5d, 0x00, 0x00] },
  { name: 'lz4', magic: [0x02, 0x21, 0x4c, 0x18] },
  { name: 'lzo', magic: [0x89, 0x4c, 0x5a, 0x4f] },
];

/** Which compression `data` uses, from its magic bytes; 'none' if it is none we know. */
export function detectCompression(data: Buffer): Compression {
  if (startsWith(data, GZIP_MAGIC)) return 'gzip';
  if (startsWith(data, ZSTD_MAGIC)) return 'zstd';
  if (startsWith(data, XZ_MAGIC)) return 'xz';
  return 'none';
}

const BOMB_HINT = 'is it really an initramfs or an image layer? a few bytes that claim gigabytes are refused';

const DECODER: Record<Exclude<Compression, 'none'>, 'gz' | 'zst' | 'xz'> = {
  gzip: 'gz',
  zstd: 'zst',
  xz: 'xz',
};

/**
 * Decompress gzip, zstd or xz (detected from the magic bytes); anything else is
 * returned as it is. Only the first format is undone: an initramfs made of an
 * uncompressed cpio followed by a compressed one is returned unchanged. Corrupt
 * data, or a bzip2/lzma/lz4/lzo image, is CPIO_INVALID naming `name`.
 *
 * Output is bounded while it streams (sources/decompress.ts): by `limit` when it is
 * a Budget (charged with what comes out) or a number of bytes, else by
 * `defaultLimit` of the input. Past it: the budget's error (reason "over-budget").
 */
export async function decompressAny(data: Buffer, name = 'image', limit?: number | Budget): Promise<Buffer> {
  const format = detectCompression(data);
  const budget =
    typeof limit === 'object'
      ? limit
      : limit === undefined
        ? defaultBudget(name, data.length, 'CPIO_INVALID', BOMB_HINT)
        : newBudget(name, limit, 'CPIO_INVALID', BOMB_HINT);
  if (format === 'none') {
    const other = UNSUPPORTED.find((u) => startsWith(data, u.magic));
    if (other) {
      throw new KjxError('CPIO_INVALID', `${name}: compressed with ${other.name}, which kjx does not read`, {
        hint: 'decompress it on the host first, or rebuild it with gzip, zstd or xz',
      });
    }
    if (data.length > room(budget)) throw overBudget(budget, `holding ${data.length} bytes`);
    return data;
  }
  return inflateAsync(data, DECODER[format], name, budget, {
    code: 'CPIO_INVALID',
    corrupt: `${name}: ${format} data is corrupt or truncated`,
  });
}
