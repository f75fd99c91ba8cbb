/**
 * The load-time check of a container image archive from the host, for `images:`
 * in kjx.yaml: what `docker save`, `podman save` or `ctr images export` write, a
 * tar holding `manifest.json` (docker-save) or `oci-layout` and `index.json` (OCI
 * image layout), or both. It lives with the spec because the loader runs it;
 * sources/image-archive.ts reads the archive for the build.
 *
 * `imageArchiveProblem` is cheap enough for loading the spec: it walks the tar
 * headers (POSIX ustar / GNU, 512-byte blocks) and seeks over the data, so a
 * large archive costs a few reads. Archives are taken uncompressed: the
 * initramfs compresses them anyway.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { detectAnyCompression } from '../util/compression.js';

const BLOCK = 512;
/** The largest archive `images:` takes: 2 GiB - 1, the most Node reads into one Buffer at once. */
export const MAX_ARCHIVE_BYTES = 2 ** 31 - 1;

/** How to undo each compression on the host, for the refusal's advice. */
const DECOMPRESS: Record<Exclude<ReturnType<typeof detectAnyCompression>, 'none'>, string> = {
  gzip: 'gunzip',
  zstd: 'unzstd',
  xz: 'unxz',
  bzip2: 'bunzip2',
  lzma: 'unlzma',
  lz4: 'lz4 -d',
  lzo: 'lzop -d',
};

/** Whether these top-level names make a container image archive (as oci-reader.ts isImageArchive says). */
function isImage(names: Set<string>): boolean {
  return names.has('manifest.json') || (names.has('oci-layout') && names.has('index.json'));
}

function checksumOk(h: Buffer): boolean {
  const text = h
    .toString('latin1', 148, 156)
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]+$/.test(text)) return false;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return Number.parseInt(text, 8) === sum;
}

/** The size field: octal text, or GNU base-256 (high bit of the first byte set). */
function sizeOf(h: Buffer): number | undefined {
  if (h[124]! & 0x80) {
    let n = 0;
    for (let i = 125; i < 136; i++) n = n * 256 + h[i]!;
    return Number.isSafeInteger(n) ? n : undefined;
  }
  const text = h
    .toString('latin1', 124, 136)
    .replace(/[\0 ]+$/, '')
    .trim();
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? Number.parseInt(text, 8) : undefined;
}

function nameOf(h: Buffer): string {
  const field = (start: number, len: number): string => {
    const end = h.indexOf(0, start);
    return h.toString('utf8', start, end < 0 || end > start + len ? start + len : end);
  };
  const name = field(0, 100);
  const prefix = h.toString('latin1', 257, 263) === 'ustar\0' ? field(345, 155) : '';
  return prefix === '' ? name : `${prefix}/${name}`;
}

/** "./index.json" and "index.json" are the same member. */
export function memberName(name: string): string {
  return name.replace(/^(?:\.\/)+/, '').replace(/\/+$/, '');
}

/**
 * What is wrong with `path` as an image archive, or undefined when it looks like
 * one: it must exist, be a regular file, an uncompressed tar, and hold
 * manifest.json, or oci-layout and index.json, at its top level.
 */
export function imageArchiveProblem(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR'
      ? `does not exist (looked at ${path})`
      : `cannot be read: ${code ?? String(e)} (${path})`;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return `is not a file (${path})`;
    // read whole into the initramfs: past this no guest boots it, and Node cannot read it in one piece
    if (st.size > MAX_ARCHIVE_BYTES)
      return `is ${st.size} bytes; kjx bakes image archives of at most ${MAX_ARCHIVE_BYTES} bytes into the initramfs`;
    const h = Buffer.alloc(BLOCK);
    const names = new Set<string>();
    let off = 0;
    let entries = 0;
    let ended = false;
    while (off + BLOCK <= st.size) {
      if (readSync(fd, h, 0, BLOCK, off) !== BLOCK) return `could not be read at offset ${off}`;
      if (h.every((b) => b === 0)) {
        ended = true;
        break;
      }
      if (entries === 0) {
        const kind = detectAnyCompression(h);
        if (kind !== 'none')
          return `is ${kind}-compressed; give the uncompressed tar (${DECOMPRESS[kind]} it first: the initramfs is compressed anyway)`;
      }
      if (!checksumOk(h))
        return entries === 0 ? 'is not a tar archive' : `is damaged: bad tar header at offset ${off}`;
      const size = sizeOf(h);
      if (size === undefined) return `is damaged: bad size field at offset ${off}`;
      const flag = String.fromCharCode(h[156]!);
      // only these carry data; the size of links and directories means nothing
      const hasData = ['0', '\0', '7', 'x', 'g', 'L', 'K'].includes(flag);
      if (flag === '0' || flag === '\0' || flag === '7') names.add(memberName(nameOf(h)));
      off += BLOCK + (hasData ? Math.ceil(size / BLOCK) * BLOCK : 0);
      entries++;
    }
    if (entries === 0) return 'is not a tar archive (empty, or shorter than one tar header)';
    if (off > st.size) return 'is truncated';
    // the file ends inside a header: what was cut off may be the members that matter
    if (!ended && off < st.size) return `is truncated (cut inside the tar header at offset ${off})`;
    if (!isImage(names))
      return 'is a tar archive without manifest.json, or oci-layout and index.json, so not a container image (make one with docker save, podman save or ctr images export)';
    return undefined;
  } finally {
    closeSync(fd);
  }
}
