/**
 * Decompression of compressed kernel modules (`.ko.xz`, `.ko.zst`, `.ko.gz`), as
 * written by the kernel's `make modules_install` with CONFIG_MODULE_COMPRESS_*.
 * The format is recognized by magic bytes, not by name, and undone by the one
 * compression module (util/compression.ts), with its cap: a local kernel's
 * modules directory comes from elsewhere.
 */
import { decompressSync, detectCompression } from '../util/compression.js';

/** Turns a module file's bytes into plain ELF bytes; `path` names it in errors. */
export type ModuleDecompressor = (data: Buffer, path: string) => Buffer;

/**
 * Decompress a module if it is compressed (xz, zstd or gzip by magic), else
 * return it unchanged. Corrupt compressed data is a KjxError MODULE_INVALID.
 */
export function decompressModule(data: Buffer, path: string): Buffer {
  return decompressSync(data, detectCompression(data), {
    what: path,
    code: 'MODULE_INVALID',
    hint: 'the kernel package may be damaged; download it again (or remove it from the cache)',
  });
}
