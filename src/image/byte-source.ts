/**
 * Random access to the bytes of an artifact, so the readers of large formats
 * (ISO 9660, GPT, ext4) need not hold a whole disk image in memory. Readers take
 * a `ByteSource`; adapters make one from a Buffer (here) or a file (read-artifact.ts).
 */
import { KjxError } from '../util/errors.js';

export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes at `offset`; throws ARTIFACT_INVALID past the end. */
  read(offset: number, length: number): Buffer;
  /** What to call it in messages. */
  readonly name: string;
}

export function pastEnd(name: string, offset: number, length: number, size: number, what = ''): KjxError {
  return new KjxError(
    'ARTIFACT_INVALID',
    `${name}: ${what ? `${what}: ` : ''}${length} bytes at offset ${offset} run past the end (${size} bytes): the file is truncated or corrupt`,
    { hint: 'build or copy the artifact again' },
  );
}

export function bufferSource(data: Buffer, name: string): ByteSource {
  return {
    size: data.length,
    name,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > data.length)
        throw pastEnd(name, offset, length, data.length);
      return data.subarray(offset, offset + length);
    },
  };
}

/** The bytes of `src` from `offset`, `size` long (a partition of a disk). */
export function sliceSource(src: ByteSource, offset: number, size: number, name: string): ByteSource {
  if (offset < 0 || size < 0 || offset + size > src.size)
    throw pastEnd(src.name, offset, size, src.size, name);
  return {
    size,
    name,
    read(off, length) {
      if (off < 0 || length < 0 || off + length > size) throw pastEnd(name, off, length, size);
      return src.read(offset + off, length);
    },
  };
}
