/**
 * The x86 bzImage (Documentation/arch/x86/boot.rst): a real-mode setup part, then a
 * compressed payload that the kernel's own decompressor unpacks before it starts.
 * Under TCG that decompression is emulated and costs a few hundred milliseconds
 * of every boot. QEMU can instead load the uncompressed ELF `vmlinux` through the
 * PVH entry point (a Xen ELF note, XEN_ELFNOTE_PHYS32_ENTRY) when the kernel has
 * one (CONFIG_PVH; Debian's kernels do): the runner unpacks the payload once on
 * the host and boots that.
 *
 * Bytes in, bytes out. Payloads in legacy LZ4 (what Debian 12's kernels use) are
 * read here; gzip, xz and zstd through util/compression.ts, with its cap; others
 * (bzip2, lzma, lzo) are reported as such so the caller keeps booting the bzImage.
 */
import {
  type Compression,
  decompress,
  detectAnyCompression,
  type ForeignCompression,
} from '../util/compression.js';
import { KjxError } from '../util/errors.js';

/** Byte offsets of the setup header fields we read (boot protocol ≥ 2.08). */
const SETUP_SECTS = 0x1f1;
const HEADER_MAGIC = 0x202; // "HdrS"
const VERSION = 0x206;
const KERNEL_VERSION = 0x20e; // pointer to the version string, minus 0x200
const PAYLOAD_OFFSET = 0x248;
const PAYLOAD_LENGTH = 0x24c;

/** XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit physical entry point QEMU's PVH loader jumps to. */
const XEN_ELFNOTE_PHYS32_ENTRY = 18;
const PT_NOTE = 4;

/** Bumped when the reader learns a format: kernels it refused before are tried again. */
export const PVH_READER = 1;

/** A payload's compression, from its magic (util/compression.ts); 'unknown' when it has none we know. */
export type PayloadFormat = Exclude<Compression, 'none'> | ForeignCompression | 'unknown';

function bad(name: string, what: string): never {
  throw new KjxError('ARTIFACT_INVALID', `${name}: ${what}`, {
    hint: 'the kernel image is truncated or not an x86 bzImage',
  });
}

/** The compressed payload of a bzImage and its format. */
export function bzImagePayload(data: Buffer, name = 'kernel'): { format: PayloadFormat; payload: Buffer } {
  if (data.length < 0x260 || data.toString('latin1', HEADER_MAGIC, HEADER_MAGIC + 4) !== 'HdrS')
    bad(name, 'no bzImage setup header ("HdrS")');
  if (data.readUInt16LE(VERSION) < 0x208) bad(name, 'boot protocol older than 2.08 (no payload fields)');
  const setupSects = data[SETUP_SECTS] || 4;
  const start = (setupSects + 1) * 512 + data.readUInt32LE(PAYLOAD_OFFSET);
  const length = data.readUInt32LE(PAYLOAD_LENGTH);
  if (start + length > data.length) bad(name, `payload (${length} bytes at ${start}) runs past the end`);
  const payload = data.subarray(start, start + length);
  const detected = detectAnyCompression(payload);
  return { format: detected === 'none' ? 'unknown' : detected, payload };
}

/**
 * The kernel release a bzImage names in its setup header (`kernel_version`: a
 * NUL-terminated string such as "6.1.192 (kjx@kjx) #1 SMP ...", whose first word is
 * what `uname -r` prints), or undefined when the header has none or it is unreadable.
 */
export function bzImageRelease(data: Buffer): string | undefined {
  if (data.length < 0x260 || data.toString('latin1', HEADER_MAGIC, HEADER_MAGIC + 4) !== 'HdrS')
    return undefined;
  const ptr = data.readUInt16LE(KERNEL_VERSION);
  if (ptr === 0) return undefined;
  const start = 0x200 + ptr;
  // the string sits in the setup sectors; 256 bytes hold any release kbuild writes
  const end = data.indexOf(0, start);
  if (start >= data.length || end < 0 || end - start > 256) return undefined;
  const release = data.toString('latin1', start, end).split(' ')[0] ?? '';
  return /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/.test(release) ? release : undefined;
}

/**
 * Decode one LZ4 block (the raw block format: sequences of literals and matches)
 * into `out`; returns the number of bytes written.
 */
function lz4Block(src: Buffer, out: Buffer, name: string): number {
  let i = 0;
  let o = 0;
  while (i < src.length) {
    const token = src[i++]!;
    let lit = token >> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (i >= src.length) bad(name, 'LZ4 literal length runs past the block');
        b = src[i++]!;
        lit += b;
      } while (b === 255);
    }
    if (i + lit > src.length || o + lit > out.length) bad(name, 'LZ4 literals run past the block');
    src.copy(out, o, i, i + lit);
    i += lit;
    o += lit;
    if (i >= src.length) break; // the last sequence has literals only
    if (i + 2 > src.length) bad(name, 'LZ4 match offset truncated');
    const offset = src[i]! | (src[i + 1]! << 8);
    i += 2;
    if (offset === 0 || offset > o) bad(name, 'LZ4 match offset out of range');
    let len = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (i >= src.length) bad(name, 'LZ4 match length runs past the block');
        b = src[i++]!;
        len += b;
      } while (b === 255);
    }
    if (o + len > out.length) bad(name, 'LZ4 match runs past the output');
    // byte by byte: a match may overlap what it is copying (offset < length)
    for (let k = 0; k < len; k++, o++) out[o] = out[o - offset]!;
  }
  return o;
}

/**
 * The legacy LZ4 frame (`lz4 -l`, the kernel's format): a magic, then blocks
 * of at most 8 MiB, each a 32-bit compressed size and a raw block. The kernel's
 * build appends the uncompressed size as 4 more bytes; anything else left after
 * the last whole block means the data is cut short.
 */
export function lz4LegacyDecompress(data: Buffer, name = 'lz4 data'): Buffer {
  const BLOCK = 8 << 20;
  const chunks: Buffer[] = [];
  let i = 4;
  while (i + 4 <= data.length) {
    const size = data.readUInt32LE(i);
    if (size === 0x184c2102) {
      i += 4; // concatenated frames
      continue;
    }
    if (size === 0 || i + 4 + size > data.length) break;
    const out = Buffer.alloc(BLOCK);
    const end = lz4Block(data.subarray(i + 4, i + 4 + size), out, name);
    chunks.push(out.subarray(0, end));
    i += 4 + size;
  }
  if (chunks.length === 0) bad(name, 'no LZ4 block');
  const rest = data.length - i;
  if (rest !== 0 && rest !== 4) bad(name, `truncated: ${rest} bytes after the last whole LZ4 block`);
  return Buffer.concat(chunks);
}

/** Whether an ELF64 little-endian image carries the PVH entry note. */
export function hasPvhEntry(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let k = 0; k < phnum; k++) {
    const ph = phoff + k * phentsize;
    if (ph + 56 > elf.length || elf.readUInt32LE(ph) !== PT_NOTE) continue;
    const off = Number(elf.readBigUInt64LE(ph + 8));
    const size = Number(elf.readBigUInt64LE(ph + 32));
    let n = off;
    while (n + 12 <= Math.min(off + size, elf.length)) {
      const namesz = elf.readUInt32LE(n);
      const descsz = elf.readUInt32LE(n + 4);
      const type = elf.readUInt32LE(n + 8);
      const noteName = elf.toString('latin1', n + 12, n + 12 + Math.max(0, namesz - 1));
      if (noteName === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      n += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3);
    }
  }
  return false;
}

export type VmlinuxResult = { ok: true; vmlinux: Buffer; format: PayloadFormat } | { ok: false; why: string };

/**
 * The uncompressed ELF `vmlinux` inside a bzImage (an ELF image is returned as it is),
 * or `why` it cannot be unpacked. The eBPF build reads the kernel's BTF from it too
 * (src/bpf/kernel-btf.ts).
 */
export async function unpackVmlinux(
  bzImage: Buffer,
  name = 'kernel',
): Promise<{ ok: true; elf: Buffer; format: PayloadFormat } | { ok: false; why: string }> {
  if (bzImage.length >= 4 && bzImage.readUInt32BE(0) === 0x7f454c46)
    return { ok: true, elf: bzImage, format: 'unknown' };
  const { format, payload } = bzImagePayload(bzImage, name);
  if (payload.length < 4) bad(name, `its payload is ${payload.length} bytes, too short to end with its size`);
  // every payload ends with the uncompressed size (gzip's ISIZE; appended by the
  // kernel's build for the others)
  const want = payload.readUInt32LE(payload.length - 4);
  let elf: Buffer;
  switch (format) {
    case 'lz4':
      elf = lz4LegacyDecompress(payload, `${name} (lz4 payload)`);
      break;
    case 'gzip':
    case 'zstd':
    case 'xz':
      // gzip ends with its own size (ISIZE); the kernel's build appends one to the others
      elf = await decompress(format === 'gzip' ? payload : payload.subarray(0, payload.length - 4), format, {
        what: `${name} (${format} payload)`,
        code: 'ARTIFACT_INVALID',
        hint: 'the kernel image is truncated or damaged',
        // the size the payload ends with: a vmlinux that unpacks to more is refused while it streams
        limit: want,
      });
      break;
    default:
      return { ok: false, why: `its payload is ${format}-compressed, which kjx does not unpack` };
  }
  // a different length means the data was cut short
  if (elf.length % 2 ** 32 !== want)
    bad(name, `the ${format} payload unpacks to ${elf.length} bytes, its trailer says ${want}`);
  return { ok: true, elf, format };
}

/**
 * The uncompressed vmlinux of a bzImage, when QEMU can boot it directly (PVH).
 * `why` says what stands in the way otherwise (the caller boots the bzImage).
 */
export async function pvhVmlinux(bzImage: Buffer, name = 'kernel'): Promise<VmlinuxResult> {
  bzImagePayload(bzImage, name); // throws for what is not a bzImage, an ELF image included
  const r = await unpackVmlinux(bzImage, name);
  if (!r.ok) return r;
  if (!hasPvhEntry(r.elf)) return { ok: false, why: 'its vmlinux has no PVH entry point (CONFIG_PVH)' };
  return { ok: true, vmlinux: r.elf, format: r.format };
}
