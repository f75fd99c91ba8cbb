/**
 * Container image archives from the host, for `images:` in kjx.yaml: what
 * `docker save`, `podman save` or `ctr images export` write, a tar holding
 * `manifest.json` (docker-save) or `oci-layout` and `index.json` (OCI image
 * layout), or both.
 *
 * `imageArchiveProblem` is cheap enough for loading the spec: it walks the tar
 * headers (POSIX ustar / GNU, 512-byte blocks) and seeks over the data, so a
 * large archive costs a few reads. `readImageArchive` reads the whole file for
 * the build and parses it with our tar reader. Archives are taken uncompressed:
 * the initramfs compresses them anyway.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { KjxError } from '../util/errors.js';
import { parseTar, type TarEntry } from './tar.js';

const BLOCK = 512;
/** The largest archive `images:` takes: 2 GiB - 1, the most Node reads into one Buffer at once. */
export const MAX_ARCHIVE_BYTES = 2 ** 31 - 1;

const COMPRESSED: [string, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['bzip2', [0x42, 0x5a, 0x68]],
];

const DECOMPRESS = { gzip: 'gunzip', zstd: 'unzstd', xz: 'unxz', bzip2: 'bunzip2' } as Record<string, string>;

/** The JSON members of a container image archive, checked when the build reads it. */
const IMAGE_FILES = ['manifest.json', 'index.json', 'oci-layout'];

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
function memberName(name: string): string {
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
        const kind = COMPRESSED.find(([, magic]) => magic.every((b, i) => h[i] === b))?.[0];
        if (kind)
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

/**
 * Read a host image archive whole for the build, checked like the spec loader does
 * and then parsed entry by entry.
 * @param what names it in messages, e.g. "images[0] (app): archive ./app.tar"
 * @throws KjxError INPUT_NOT_FOUND when it is gone, SPEC_INVALID when it is not an image archive
 */
export function readImageArchive(path: string, what: string): Buffer {
  const hint = 'images: archives are what docker save, podman save or ctr images export write';
  const problem = imageArchiveProblem(path);
  if (problem)
    throw new KjxError(
      problem.startsWith('does not exist') ? 'INPUT_NOT_FOUND' : 'SPEC_INVALID',
      `${what} ${problem}`,
      {
        hint,
      },
    );
  const data = readFileSync(path);
  let entries: TarEntry[];
  try {
    entries = parseTar(data, path);
  } catch (cause) {
    throw new KjxError('SPEC_INVALID', `${what} is damaged: ${(cause as Error).message}`, { hint, cause });
  }
  for (const e of entries) {
    const name = memberName(e.name);
    if (e.type !== 'file' || !IMAGE_FILES.includes(name)) continue;
    try {
      JSON.parse(e.data.toString('utf8'));
    } catch (cause) {
      throw new KjxError(
        'SPEC_INVALID',
        `${what} is damaged: ${name} is not valid JSON (${(cause as Error).message})`,
        {
          hint,
          cause,
        },
      );
    }
  }
  return data;
}
