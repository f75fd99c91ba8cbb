/**
 * cpio "newc" (magic 070701) as the Linux kernel's initramfs unpacker reads it,
 * plus the "crc" variant (070702) on the reading side.
 *
 * Spec: the kernel's Documentation/driver-api/early-userspace/buffer-format.rst,
 * and init/initramfs.c for the behaviour that matters (hard links, name limits).
 * Every entry is a 110-byte ASCII header (magic + 13 fields of 8 hex digits),
 * the NUL-terminated name padded so header+name is a multiple of 4, then the
 * data padded to a multiple of 4. The archive ends with an entry "TRAILER!!!".
 *
 * Pure format code (STYLE habit 2): Tree in, bytes out; bytes in, records out.
 * The writer takes a tree that went through the reproducibility pass
 * (rootfs/reproducible.ts: order, times, inode numbers); what it adds (link
 * counts, names) is a function of that tree.
 */

import type { ReproducibleTree } from '../rootfs/reproducible.js';
import {
  type DeviceEntry,
  type EntrySource,
  type FileEntry,
  newTree,
  normalizePath,
  parentOf,
  type Tree,
  type TreeEntry,
} from '../rootfs/tree.js';
import { type Budget, charge, ENTRY_COST } from '../util/budget.js';
import { KjxError } from '../util/errors.js';
import { printable } from '../util/printable.js';

/** File type bits of `mode` (st_mode), as cpio stores them. */
const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;

const MAGIC_NEWC = '070701';
const MAGIC_CRC = '070702';
const HEADER_SIZE = 110;
const TRAILER = 'TRAILER!!!';
/**
 * The kernel skips (silently) any entry whose name, NUL included, is longer than
 * PATH_MAX, and any symlink whose target is; we refuse to write such entries.
 */
const PATH_MAX = 4096;
const U32_MAX = 0xffffffff;
/** Linux dev_t: 12-bit major, 20-bit minor (MKDEV). */
const MAJOR_MAX = 0xfff;
const MINOR_MAX = 0xfffff;

/** Shared source of padding bytes; parts are subarrays of it, never copies. */
const ZEROS = Buffer.alloc(4);

/** One record of a cpio archive, as read. */
export interface CpioEntry {
  /** The name as stored, without its NUL: "." for the root, "bin/sh", ... */
  name: string;
  ino: number;
  /** Type and permission bits (st_mode). */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  /** Device of the file system the file came from (used only to match hard links). */
  devMajor: number;
  devMinor: number;
  /** Device number of a character or block device node. */
  rdevMajor: number;
  rdevMinor: number;
  /** Sum of the data bytes in 070702 archives, 0 in 070701 ones. */
  check: number;
  /** File contents or symlink target. A view into the archive, not a copy. */
  data: Buffer;
  /** Byte offset of the header in the archive, for messages. */
  offset: number;
}

const align4 = (n: number): number => (n + 3) & ~3;

function typeBits(e: TreeEntry): number {
  switch (e.type) {
    case 'file':
      return S_IFREG;
    case 'dir':
      return S_IFDIR;
    case 'symlink':
      return S_IFLNK;
    case 'char':
      return S_IFCHR;
    case 'block':
      return S_IFBLK;
    case 'fifo':
      return S_IFIFO;
    case 'hardlink':
      // Callers resolve hard links to their inode first.
      throw new KjxError('INTERNAL', `${e.path}: hard link reached typeBits unresolved`);
  }
}

function invalid(path: string, what: string): KjxError {
  return new KjxError('TREE_INVALID', `${path}: ${what}, cannot write it to cpio`);
}

function checkU32(path: string, field: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > U32_MAX)
    throw invalid(path, `${field} ${v} is not a 32-bit unsigned integer`);
}

/** Follow a hard link (and links to links) to the entry that owns the inode. */
function resolveHardlink(tree: Tree, e: TreeEntry): Exclude<TreeEntry, { type: 'hardlink' }> {
  let cur: TreeEntry = e;
  const seen = new Set<string>();
  while (cur.type === 'hardlink') {
    if (seen.has(cur.path)) throw invalid(e.path, 'hard link loop');
    seen.add(cur.path);
    const next = tree.get(cur.target);
    if (!next) throw invalid(e.path, `hard link target ${cur.target} is not in the tree`);
    cur = next;
  }
  // The kernel only links regular files, devices, fifos and sockets (maybe_link);
  // a directory or symlink cannot have a second name.
  if (cur.type === 'dir' || cur.type === 'symlink') {
    throw invalid(e.path, `hard link to ${cur.type} ${cur.path}`);
  }
  return cur;
}

/** Writes 8 uppercase hex digits (the kernel's gen_init_cpio uses %08X too). */
function putHex8(buf: Buffer, off: number, v: number): void {
  for (let i = 7; i >= 0; i--) {
    const d = v & 0xf;
    buf[off + i] = d < 10 ? 0x30 + d : 0x37 + d;
    v >>>= 4;
  }
}

interface HeaderFields {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
}

/** Header plus NUL-terminated name, padded to 4, as one buffer. */
function headerWithName(name: string, f: HeaderFields): Buffer {
  const nameLen = Buffer.byteLength(name, 'utf8');
  const buf = Buffer.alloc(align4(HEADER_SIZE + nameLen + 1));
  buf.write(MAGIC_NEWC, 0, 'latin1');
  const fields = [f.ino, f.mode, f.uid, f.gid, f.nlink, f.mtime, f.size, 0, 0, f.rdevMajor, f.rdevMinor];
  for (let i = 0; i < fields.length; i++) putHex8(buf, 6 + i * 8, fields[i]!);
  putHex8(buf, 6 + 11 * 8, nameLen + 1); // namesize counts the NUL
  putHex8(buf, 6 + 12 * 8, 0); // check: 0 in newc
  buf.write(name, HEADER_SIZE, 'utf8');
  return buf;
}

/**
 * Serialize a tree as one newc archive, the way the kernel's initramfs unpacker
 * wants it. Deterministic: the same tree (in any insertion order) and epoch give
 * the same bytes.
 *
 * - entries come in the pass's order (parents before children), with its mtimes
 *   (clamped to SOURCE_DATE_EPOCH) and its inode numbers;
 * - the root "/" is written as "." when the tree has it: the kernel then applies
 *   its owner and mode to the rootfs root (mkdir fails with EEXIST, chown/chmod
 *   still run), and GNU cpio accepts an existing "." silently. `find . | cpio`
 *   (mkinitramfs, dracut) writes it the same way;
 * - names carry no leading slash;
 * - nlink is 2 + subdirectories for a directory, the number of names for a
 *   hard-linked inode, 1 otherwise;
 * - hard links share their inode's number, type, owner, mode and mtime (one inode
 *   has one set of those; the hard link entry's own are ignored). The first name
 *   in archive order carries the data, later names have size 0: the kernel links
 *   later names to the first (init/initramfs.c, maybe_link) and GNU cpio defers
 *   size-0 links until the end, then links them too.
 *
 * Throws TREE_INVALID for what the format or the kernel cannot hold (a name
 * over PATH_MAX, a dangling hard link or one to a directory or symlink, a value
 * over 32 bits, type bits in `mode`, ...).
 */
export function writeCpio(image: ReproducibleTree): Buffer {
  const { entries, tree: byPath } = image;

  // Inode owner of every name, and how many names each inode has.
  const owner = new Map<string, Exclude<TreeEntry, { type: 'hardlink' }>>();
  const names = new Map<string, number>();
  const subdirs = new Map<string, number>();
  for (const e of entries) {
    if (e.type === 'hardlink') {
      const o = resolveHardlink(byPath, e);
      owner.set(e.path, o);
      names.set(o.path, (names.get(o.path) ?? 1) + 1);
    } else if (e.type === 'dir' && e.path !== '/') {
      const p = parentOf(e.path);
      subdirs.set(p, (subdirs.get(p) ?? 0) + 1);
    }
  }

  const parts: Buffer[] = [];
  let total = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    total += b.length;
  };
  // the first name of an inode carries its data
  const written = new Set<number>();

  for (const e of entries) {
    if (normalizePath(e.path) !== e.path) throw invalid(e.path, 'path is not normalized');
    if (e.path === '/' && e.type !== 'dir') throw invalid(e.path, `the root is a ${e.type}, not a directory`);
    const name = e.path === '/' ? '.' : e.path.slice(1);
    if (name.includes('\0')) throw invalid(e.path, 'name contains a NUL byte');
    if (Buffer.byteLength(name, 'utf8') + 1 > PATH_MAX)
      throw invalid(e.path, `name is longer than ${PATH_MAX - 1} bytes`);

    const o = owner.get(e.path) ?? (e as Exclude<TreeEntry, { type: 'hardlink' }>);
    const ino = image.inodes.get(e.path);
    if (ino === undefined || byPath.get(e.path) !== e)
      throw invalid(e.path, 'the tree holds it under another path');
    const first = !written.has(ino);
    written.add(ino);

    if ((o.mode & ~0o7777) !== 0) throw invalid(e.path, `mode 0${o.mode.toString(8)} has bits beyond 07777`);
    checkU32(e.path, 'uid', o.uid);
    checkU32(e.path, 'gid', o.gid);
    checkU32(e.path, 'mtime', o.mtime);

    let data: Buffer | undefined;
    let nlink = 1;
    let rdevMajor = 0;
    let rdevMinor = 0;
    switch (o.type) {
      case 'file':
        if (first) data = o.data;
        nlink = names.get(o.path) ?? 1;
        break;
      case 'dir':
        nlink = 2 + (subdirs.get(o.path) ?? 0);
        break;
      case 'symlink':
        data = Buffer.from(o.target, 'utf8');
        if (data.length === 0 || data.length + 1 > PATH_MAX) {
          throw invalid(e.path, `symlink target length ${data.length} is outside 1..${PATH_MAX - 1}`);
        }
        break;
      case 'char':
      case 'block':
        checkDev(e.path, o);
        rdevMajor = o.major;
        rdevMinor = o.minor;
        nlink = names.get(o.path) ?? 1;
        break;
      case 'fifo':
        nlink = names.get(o.path) ?? 1;
        break;
    }
    const size = data?.length ?? 0;
    checkU32(e.path, 'size', size);
    push(
      headerWithName(name, {
        ino,
        mode: typeBits(o) | o.mode,
        uid: o.uid,
        gid: o.gid,
        nlink,
        mtime: o.mtime,
        size,
        rdevMajor,
        rdevMinor,
      }),
    );
    if (data && size > 0) {
      push(data);
      const pad = align4(size) - size;
      if (pad > 0) push(ZEROS.subarray(0, pad));
    }
  }
  // GNU cpio writes nlink 1 in the trailer; everything else is 0.
  push(
    headerWithName(TRAILER, {
      ino: 0,
      mode: 0,
      uid: 0,
      gid: 0,
      nlink: 1,
      mtime: 0,
      size: 0,
      rdevMajor: 0,
      rdevMinor: 0,
    }),
  );
  return Buffer.concat(parts, total);
}

function checkDev(path: string, e: DeviceEntry): void {
  if (!Number.isInteger(e.major) || e.major < 0 || e.major > MAJOR_MAX) {
    throw invalid(path, `device major ${e.major} is outside 0..${MAJOR_MAX}`);
  }
  if (!Number.isInteger(e.minor) || e.minor < 0 || e.minor > MINOR_MAX) {
    throw invalid(path, `device minor ${e.minor} is outside 0..${MINOR_MAX}`);
  }
}

/** Strict parse of 8 hex digits; -1 if any byte is not a hex digit. */
function hex8(data: Buffer, off: number): number {
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const c = data[off + i]!;
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else return -1;
    v = v * 16 + d; // not <<: that would go negative above 0x7fffffff
  }
  return v;
}

const FIELD_NAMES = [
  'ino',
  'mode',
  'uid',
  'gid',
  'nlink',
  'mtime',
  'filesize',
  'devmajor',
  'devminor',
  'rdevmajor',
  'rdevminor',
  'namesize',
  'check',
] as const;

const KNOWN_TYPES = new Set([S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK]);

/**
 * Parse one cpio archive (newc 070701 or crc 070702) up to its trailer. Bytes
 * after the trailer (block padding, a concatenated archive) are not read.
 * Entry data are views into `data`, not copies.
 *
 * `name` names the archive in messages. Anything malformed (bad magic, a field
 * that is not hex, a name without its NUL, sizes that run past the end, a crc
 * mismatch, an unknown file type, a missing trailer) is a KjxError CPIO_INVALID;
 * no other error escapes.
 */
export function readCpio(data: Buffer, name: string, budget?: Budget): CpioEntry[] {
  const bad = (off: number, what: string): KjxError =>
    new KjxError('CPIO_INVALID', `${name}: ${what} at offset ${off}`, {
      hint: 'is it a newc cpio archive? `file` or `kjx inspect` tells what it is',
    });
  const out: CpioEntry[] = [];
  let off = 0;
  for (;;) {
    if (off + HEADER_SIZE > data.length)
      throw bad(off, off === data.length ? 'missing TRAILER!!!' : 'truncated header');
    const magic = data.toString('latin1', off, off + 6);
    if (magic !== MAGIC_NEWC && magic !== MAGIC_CRC) {
      throw bad(off, `bad magic ${JSON.stringify(magic)} (want 070701 or 070702)`);
    }
    const f: number[] = [];
    for (let i = 0; i < 13; i++) {
      const v = hex8(data, off + 6 + i * 8);
      if (v < 0) throw bad(off, `field ${FIELD_NAMES[i]} is not 8 hex digits`);
      f.push(v);
    }
    const [
      ino,
      mode,
      uid,
      gid,
      nlink,
      mtime,
      filesize,
      devMajor,
      devMinor,
      rdevMajor,
      rdevMinor,
      namesize,
      check,
    ] = f as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    if (namesize === 0 || namesize > PATH_MAX) throw bad(off, `name size ${namesize} outside 1..${PATH_MAX}`);
    const nameStart = off + HEADER_SIZE;
    const dataStart = align4(nameStart + namesize);
    if (nameStart + namesize > data.length) throw bad(off, 'truncated name');
    if (data[nameStart + namesize - 1] !== 0) throw bad(off, 'name is not NUL-terminated');
    const nul = data.indexOf(0, nameStart);
    if (nul !== nameStart + namesize - 1) throw bad(off, 'name contains a NUL byte');
    const entryName = data.toString('utf8', nameStart, nameStart + namesize - 1);
    if (entryName === TRAILER) return out;
    if (filesize > data.length - dataStart)
      throw bad(off, `${printable(entryName)}: data of ${filesize} bytes runs past the end`);
    if (!KNOWN_TYPES.has(mode & S_IFMT))
      throw bad(off, `${printable(entryName)}: unknown file type 0${(mode & S_IFMT).toString(8)}`);
    const body = data.subarray(dataStart, dataStart + filesize);
    if (magic === MAGIC_CRC && (mode & S_IFMT) === S_IFREG) {
      let sum = 0;
      for (let i = 0; i < body.length; i++) sum = (sum + body[i]!) >>> 0;
      if (sum !== check)
        throw bad(off, `${printable(entryName)}: data checksum ${sum} does not match header ${check}`);
    }
    // entries are views into `data`; the records describing them are what a listing costs
    charge(budget, ENTRY_COST, `listing ${name}`);
    out.push({
      name: entryName,
      ino,
      mode,
      uid,
      gid,
      nlink,
      mtime,
      devMajor,
      devMinor,
      rdevMajor,
      rdevMinor,
      check,
      data: body,
      offset: off,
    });
    off = align4(dataStart + filesize);
  }
}

/**
 * Rebuild a Tree from archive entries, for inspection and tests. Names map to
 * tree paths ("." is "/", "./bin" and "bin" are "/bin"); a name that climbs
 * above the root is CPIO_INVALID. Hard links are matched the way the kernel does
 * (nlink >= 2, same dev, inode and type): the first name becomes the file and
 * later names `hardlink` entries pointing at it; the data is taken from whichever
 * name carries it (kjx writes it on the first, GNU cpio on the last). A later
 * entry with the same name replaces an earlier one, as on extraction.
 */
export function cpioToTree(
  entries: CpioEntry[],
  source: EntrySource = { kind: 'input', ref: 'cpio' },
  budget?: Budget,
): Tree {
  const tree = newTree();
  const firstName = new Map<string, string>();
  for (const c of entries) {
    let path: string;
    try {
      path = normalizePath(c.name);
    } catch (cause) {
      throw new KjxError(
        'CPIO_INVALID',
        `cpio entry ${printable(JSON.stringify(c.name))} climbs above the root`,
        {
          cause,
        },
      );
    }
    charge(budget, ENTRY_COST + path.length, 'listing the cpio archive');
    const base = { path, mode: c.mode & 0o7777, uid: c.uid, gid: c.gid, mtime: c.mtime, source };
    const type = c.mode & S_IFMT;
    if (c.nlink >= 2 && type !== S_IFDIR && type !== S_IFLNK) {
      const key = `${c.devMajor}:${c.devMinor}:${c.ino}:${type}`;
      const first = firstName.get(key);
      if (first !== undefined && first !== path) {
        const owner = tree.get(first);
        if (owner?.type === 'file' && c.data.length > 0) (owner as FileEntry).data = c.data;
        tree.set(path, { ...base, type: 'hardlink', target: first });
        continue;
      }
      firstName.set(key, path);
    }
    switch (type) {
      case S_IFREG:
        tree.set(path, { ...base, type: 'file', data: c.data });
        break;
      case S_IFDIR:
        tree.set(path, { ...base, type: 'dir' });
        break;
      case S_IFLNK:
        tree.set(path, { ...base, type: 'symlink', target: c.data.toString('utf8') });
        break;
      case S_IFCHR:
      case S_IFBLK:
        tree.set(path, {
          ...base,
          type: type === S_IFCHR ? 'char' : 'block',
          major: c.rdevMajor,
          minor: c.rdevMinor,
        });
        break;
      case S_IFIFO:
        tree.set(path, { ...base, type: 'fifo' });
        break;
      default:
        throw new KjxError(
          'CPIO_INVALID',
          `cpio entry ${printable(c.name)} at offset ${c.offset}: file type 0${type.toString(8)} has no place in a Tree`,
        );
    }
  }
  return tree;
}
