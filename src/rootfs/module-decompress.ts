/**
 * Decompression of compressed kernel modules (`.ko.xz`, `.ko.zst`, `.ko.gz`), as
 * written by the kernel's `make modules_install` with CONFIG_MODULE_COMPRESS_*.
 *
 * The adapter between the pure module code and the compression libraries
 * (@napi-rs/lzma for xz, fzstd for zstd, node:zlib for gzip): swapping a library
 * touches only this file. The format is recognized by magic bytes, not by name.
 */
import { gunzipSync } from 'node:zlib';
import { xz } from '@napi-rs/lzma';
import { decompress as zstdDecompress } from 'fzstd';
import { KjxError } from '../util/errors.js';
import { moduleCompression } from './modinfo.js';

/** Turns a module file's bytes into plain ELF bytes; `path` names it in errors. */
export type ModuleDecompressor = (data: Buffer, path: string) => Buffer;

/**
 * Decompress a module if it is compressed (xz, zstd or gzip by magic), else
 * return it unchanged. Corrupt compressed data is a KjxError MODULE_INVALID.
 */
export function decompressModule(data: Buffer, path: string): Buffer {
  const kind = moduleCompression(data);
  if (!kind) return data;
  try {
    switch (kind) {
      case 'xz':
        return xz.decompressSync(data);
      case 'zstd': {
        const out = zstdDecompress(data);
        return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
      }
      case 'gzip':
        return gunzipSync(data);
    }
  } catch (cause) {
    throw new KjxError(
      'MODULE_INVALID',
      `${path}: corrupt ${kind} data (${(cause as Error).message ?? cause})`,
      {
        cause,
        hint: 'the kernel package may be damaged; download it again (or remove it from the cache)',
      },
    );
  }
}
