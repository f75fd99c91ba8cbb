/**
 * Writer of rootfs tarballs: POSIX ustar (POSIX.1-2017, pax utility, "ustar
 * Interchange Format"), with pax extended headers ("x" entries) only where a
 * value does not fit ustar: a path or link target too long for name/prefix, an
 * id above 2097151, a size of 8 GiB or more. `podman import`, `docker import`
 * and GNU tar read it; src/sources/tar.ts reads it back.
 *
 * The archive keeps the Tree's ownership, modes, device numbers and hard links,
 * so a tarball written as an ordinary user still holds root-owned files and
 * /dev/console. Names are "./"-relative like `tar -C root -c .`; directories
 * end in "/". uname/gname are "root" for id 0 and empty otherwise, so extraction
 * never maps a guest user name onto a different host user.
 *
 * Deterministic: entries, times and hard links as the reproducibility pass
 * (rootfs/reproducible.ts) left them, pax header names derived from the entry,
 * the archive padded to whole 10240-byte records as GNU tar does. Pure: Tree in,
 * bytes out.
 */

import { posix } from 'node:path';
import type { ReproducibleTree } from '../rootfs/reproducible.js';
import type { FileEntry, TreeEntry } from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';

const BLOCK = 512;
const RECORD = 20 * BLOCK;
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

export interface WriteTarOptions {
  /**
   * How entries are named: "./etc/passwd" with a "./" entry for the root, like
   * `tar -C root -c .` (the default), or "etc/passwd" without a root entry, like
   * container image layers and `docker save` archives (src/image/oci.ts).
   */
  names?: 'dot' | 'bare';
}

const TYPEFLAG: Record<TreeEntry['type'], string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

function octal(value: number, width: number): string {
  // width includes the terminating NUL
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** Split a name into ustar prefix (<=155 bytes) and name (<=100 bytes) at a "/", if possible. */
function splitName(name: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (rest.length > 0 && Buffer.byteLength(rest) <= 100 && Buffer.byteLength(prefix) <= 155)
      return { prefix, name: rest };
    if (Buffer.byteLength(prefix) <= 155) break; // a shorter prefix only makes the name longer
  }
  return undefined;
}

interface HeaderFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function header(f: HeaderFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(f.name, 0, 100, 'utf8');
  h.write(octal(f.mode, 8), 100, 'latin1');
  h.write(octal(f.uid, 8), 108, 'latin1');
  h.write(octal(f.gid, 8), 116, 'latin1');
  h.write(octal(f.size, 12), 124, 'latin1');
  h.write(octal(f.mtime, 12), 136, 'latin1');
  h.write(' '.repeat(8), 148, 'latin1');
  h.write(f.type, 156, 'latin1');
  h.write(f.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.write(f.uname, 265, 32, 'latin1');
  h.write(f.gname, 297, 32, 'latin1');
  if (f.type === '3' || f.type === '4') {
    h.write(octal(f.devmajor, 8), 329, 'latin1');
    h.write(octal(f.devminor, 8), 337, 'latin1');
  }
  h.write(f.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** One pax record "<len> <key>=<value>\n", where len counts the whole record. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (bodyLen + String(len).length !== len) len = bodyLen + String(len).length;
  return `${len}${body}`;
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function tarName(e: TreeEntry, bare: boolean): string {
  if (e.path === '/') return './';
  return `${bare ? e.path.slice(1) : `.${e.path}`}${e.type === 'dir' ? '/' : ''}`;
}

function invalid(path: string, what: string): KjxError {
  return new KjxError('TREE_INVALID', `${path}: ${what}, cannot write it to tar`);
}

/**
 * Serialize a tree as a ustar archive. Throws TREE_INVALID for what tar cannot
 * hold (a dangling hard link, a mode with type bits, a negative id).
 */
export function writeTar(image: ReproducibleTree, opts: WriteTarOptions = {}): Buffer {
  // hard links in canonical form: the first name of an inode carries the data, later names link to it
  const canon = image.tree;
  const bare = opts.names === 'bare';
  const entries = image.entries.filter((e) => !bare || e.path !== '/');
  const parts: Buffer[] = [];
  let total = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    total += b.length;
  };
  for (const e of entries) {
    if ((e.mode & ~0o7777) !== 0) throw invalid(e.path, `mode 0${e.mode.toString(8)} has bits beyond 07777`);
    for (const [k, v] of [
      ['uid', e.uid],
      ['gid', e.gid],
      ['mtime', e.mtime],
    ] as const) {
      if (!Number.isInteger(v) || v < 0) throw invalid(e.path, `${k} ${v} is not a whole number >= 0`);
    }
    const name = tarName(e, bare);
    let linkname = '';
    if (e.type === 'symlink') linkname = e.target;
    if (e.type === 'hardlink') {
      const t = canon.get(e.target);
      if (!t) throw invalid(e.path, `hard link target ${e.target} is not in the tree`);
      if (t.type === 'dir') throw invalid(e.path, `hard link to directory ${e.target}`);
      linkname = bare ? e.target.slice(1) : `.${e.target}`;
    }
    const data = e.type === 'file' ? (e as FileEntry).data : undefined;
    const size = data?.length ?? 0;

    const pax: string[] = [];
    const split = splitName(name);
    if (!split) pax.push(paxRecord('path', name));
    if (Buffer.byteLength(linkname) > 100) pax.push(paxRecord('linkpath', linkname));
    if (e.uid > MAX_OCTAL_7) pax.push(paxRecord('uid', String(e.uid)));
    if (e.gid > MAX_OCTAL_7) pax.push(paxRecord('gid', String(e.gid)));
    if (size > MAX_OCTAL_11) pax.push(paxRecord('size', String(size)));
    if (e.mtime > MAX_OCTAL_11) pax.push(paxRecord('mtime', String(e.mtime)));
    if (pax.length > 0) {
      const body = Buffer.from(pax.join(''), 'utf8');
      const base = posix.basename(e.path) || 'root';
      const paxName = `${bare ? '' : './'}PaxHeaders/${Buffer.from(base)
        .subarray(0, 80)
        .toString('utf8')
        .replace(/\uFFFD+$/, '')}`;
      push(
        header({
          name: paxName,
          prefix: '',
          mode: 0o644,
          uid: 0,
          gid: 0,
          size: body.length,
          mtime: Math.min(e.mtime, MAX_OCTAL_11),
          type: 'x',
          linkname: '',
          uname: '',
          gname: '',
          devmajor: 0,
          devminor: 0,
        }),
      );
      push(body);
      push(Buffer.alloc(pad(body.length)));
    }
    const short = split ?? { prefix: '', name: Buffer.from(name).subarray(0, 100).toString('utf8') };
    push(
      header({
        name: short.name,
        prefix: short.prefix,
        mode: e.mode,
        uid: Math.min(e.uid, MAX_OCTAL_7),
        gid: Math.min(e.gid, MAX_OCTAL_7),
        size: Math.min(size, MAX_OCTAL_11),
        mtime: Math.min(e.mtime, MAX_OCTAL_11),
        type: TYPEFLAG[e.type],
        linkname: Buffer.from(linkname).subarray(0, 100).toString('utf8'),
        uname: e.uid === 0 ? 'root' : '',
        gname: e.gid === 0 ? 'root' : '',
        devmajor: e.type === 'char' || e.type === 'block' ? e.major : 0,
        devminor: e.type === 'char' || e.type === 'block' ? e.minor : 0,
      }),
    );
    if (data && size > 0) {
      push(data);
      push(Buffer.alloc(pad(size)));
    }
  }
  // end of archive: two zero blocks, then zeros to a whole record
  const end = 2 * BLOCK + ((RECORD - ((total + 2 * BLOCK) % RECORD)) % RECORD);
  push(Buffer.alloc(end));
  return Buffer.concat(parts, total);
}
