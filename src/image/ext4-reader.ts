/**
 * Reader of ext2/3/4 file systems, enough for `kjx inspect` and `kjx diff` to
 * list a disk image's root without mounting it: every path with its type, mode,
 * owner, size, symlink target, device number and contents.
 *
 * Layout (the kernel's Documentation/filesystems/ext4/, "Data Structures and
 * Algorithms"): the superblock at byte 1024; block group descriptors in the block
 * after it (32 bytes, or `s_desc_size` with the 64bit feature); inode N lives in
 * group (N-1) / s_inodes_per_group of that group's inode table. File blocks are
 * an extent tree (ext4) or direct/indirect block maps (ext2/3); symlinks shorter
 * than 60 bytes live in `i_block` itself. Directories are read as linear blocks of
 * records, which also covers hashed (htree) directories: their index blocks look
 * like one empty record. Checksums are not verified (the kernel's fsck does that).
 *
 * Pure: a ByteSource in, a Tree out. Anything out of range or malformed is an
 * ARTIFACT_INVALID error naming the inode or block; features this reader does not
 * know are refused by name rather than misread.
 *
 * The image may come from anyone, so the reader's work is bounded by the volume:
 * a directory is read once (a directory reached by a second name, as in a DAG of
 * hard-linked directories with exponentially many paths, is an error); a file may
 * not be larger than the volume, nor its extents map one logical block twice;
 * every block read for data, directories and extent or indirect nodes is counted,
 * and more blocks than the volume has means blocks are claimed twice (extents
 * repeated across files or within one): refused, like e2fsck's "multiply-claimed
 * blocks". File contents and entries are charged to the caller's budget.
 */
import { canonicalHardlinks } from '../rootfs/hardlinks.js';
import { type EntrySource, newTree, type Tree, type TreeEntry } from '../rootfs/tree.js';
import { type Budget, charge, ENTRY_COST } from '../util/budget.js';
import { KjxError } from '../util/errors.js';
import { printable } from '../util/printable.js';
import type { ByteSource } from './byte-source.js';

const MAGIC = 0xef53;
const INCOMPAT_FILETYPE = 0x2;
const INCOMPAT_RECOVER = 0x4;
const INCOMPAT_JOURNAL_DEV = 0x8;
const INCOMPAT_META_BG = 0x10;
const INCOMPAT_64BIT = 0x80;
const INCOMPAT_INLINE_DATA = 0x8000;
const INCOMPAT_ENCRYPT = 0x10000;
/** Incompat features that change nothing this reader looks at. */
const INCOMPAT_KNOWN =
  INCOMPAT_FILETYPE |
  INCOMPAT_RECOVER |
  0x40 /* extents */ |
  INCOMPAT_64BIT |
  0x100 /* mmp */ |
  0x200 /* flex_bg */ |
  0x400 /* ea_inode */ |
  0x2000 /* csum_seed */ |
  0x4000 /* large_dir */ |
  INCOMPAT_INLINE_DATA |
  0x20000; /* casefold: names are still stored as written */

const EXTENTS_FL = 0x80000;
const INLINE_DATA_FL = 0x10000000;
const EXTENT_MAGIC = 0xf30a;

export interface Ext4Info {
  label: string;
  uuid: string;
  blockSize: number;
  blocks: number;
  /** The journal has transactions not yet replayed: recent writes may be missing. */
  needsRecovery: boolean;
}

export interface Ext4Result {
  info: Ext4Info;
  tree: Tree;
}

/** Does the source hold an ext2/3/4 superblock? */
export function isExt4(src: ByteSource): boolean {
  return src.size >= 2048 && src.read(1024 + 56, 2).readUInt16LE(0) === MAGIC;
}

interface Inode {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  flags: number;
  links: number;
  block: Buffer; // i_block, 60 bytes
}

function uuidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Read the whole file system into a Tree (`source` becomes every entry's source). */
export function readExt4(
  src: ByteSource,
  source: EntrySource = { kind: 'input', ref: src.name },
  budget?: Budget,
): Ext4Result {
  const bad = (what: string): KjxError =>
    new KjxError('ARTIFACT_INVALID', `${src.name}: ext4: ${what}`, {
      hint: 'the file system is damaged or the image truncated; `e2fsck -fn` on the partition says more',
    });
  if (src.size < 2048) throw bad('too small to hold a superblock');
  const sb = src.read(1024, 1024);
  if (sb.readUInt16LE(56) !== MAGIC) throw bad('no ext2/3/4 superblock (magic 0xEF53) at byte 1024');
  const logBlock = sb.readUInt32LE(24);
  if (logBlock > 6) throw bad(`block size 2^(10+${logBlock}) is not plausible`);
  const bs = 1024 << logBlock;
  const incompat = sb.readUInt32LE(96);
  const is64 = (incompat & INCOMPAT_64BIT) !== 0;
  const blocks = sb.readUInt32LE(4) + (is64 ? sb.readUInt32LE(0x150) * 2 ** 32 : 0);
  const inodesCount = sb.readUInt32LE(0);
  const inodesPerGroup = sb.readUInt32LE(40);
  const blocksPerGroup = sb.readUInt32LE(32);
  const firstDataBlock = sb.readUInt32LE(20);
  const rev = sb.readUInt32LE(76);
  const inodeSize = rev >= 1 ? sb.readUInt16LE(88) : 128;
  const descSize = is64 ? sb.readUInt16LE(0xfe) : 32;
  if (inodesPerGroup === 0 || blocksPerGroup === 0 || inodeSize < 128 || inodeSize > bs || descSize < 32)
    throw bad('superblock geometry is not plausible');
  const unknown = incompat & ~INCOMPAT_KNOWN;
  if (incompat & INCOMPAT_JOURNAL_DEV) throw bad('this is an external journal device, not a file system');
  if (incompat & INCOMPAT_META_BG) throw bad('the meta_bg feature is not supported by this reader');
  if (incompat & INCOMPAT_ENCRYPT) throw bad('the file system is encrypted');
  if (unknown) throw bad(`unknown incompatible features 0x${unknown.toString(16)}`);
  if (blocks * bs > src.size) {
    throw bad(
      `the file system is ${blocks * bs} bytes but only ${src.size} are there: the image is truncated`,
    );
  }
  const groups = Math.ceil((blocks - firstDataBlock) / blocksPerGroup);
  const gdtStart = (firstDataBlock + 1) * bs;
  const info: Ext4Info = {
    label: sb.toString('latin1', 120, 136).replace(/\0.*$/s, ''),
    uuid: uuidString(sb.subarray(104, 120)),
    blockSize: bs,
    blocks,
    needsRecovery: (incompat & INCOMPAT_RECOVER) !== 0,
  };

  /** Blocks read so far: past the volume's own count, some block was read for two owners. */
  let blocksRead = 0;
  const readBlocks = (block: number, count: number, what: string): Buffer => {
    if (block < 0 || block + count > blocks) throw bad(`${what}: block ${block} is outside the file system`);
    blocksRead += count;
    if (blocksRead > blocks)
      throw bad(`${what}: more blocks are read than the ${blocks} the volume has: blocks are claimed twice`);
    return src.read(block * bs, count * bs);
  };

  const inodeTables = new Map<number, number>();
  const inodeTable = (group: number): number => {
    let t = inodeTables.get(group);
    if (t === undefined) {
      if (group >= groups) throw bad(`group ${group} does not exist`);
      const d = src.read(gdtStart + group * descSize, descSize);
      t = d.readUInt32LE(8) + (descSize >= 64 ? d.readUInt32LE(0x28) * 2 ** 32 : 0);
      inodeTables.set(group, t);
    }
    return t;
  };

  const readInode = (n: number): Inode => {
    if (n < 1 || n > inodesCount) throw bad(`inode ${n} is outside 1..${inodesCount}`);
    const group = Math.floor((n - 1) / inodesPerGroup);
    const index = (n - 1) % inodesPerGroup;
    const off = inodeTable(group) * bs + index * inodeSize;
    if (off + 128 > src.size) throw bad(`inode ${n} lies past the end of the image`);
    const b = src.read(off, 128);
    return {
      mode: b.readUInt16LE(0),
      uid: b.readUInt16LE(2) + b.readUInt16LE(120) * 0x10000,
      size: b.readUInt32LE(4) + b.readUInt32LE(108) * 2 ** 32,
      mtime: b.readUInt32LE(16),
      gid: b.readUInt16LE(24) + b.readUInt16LE(122) * 0x10000,
      links: b.readUInt16LE(26),
      flags: b.readUInt32LE(32),
      block: Buffer.from(b.subarray(40, 100)),
    };
  };

  /** Physical block of each logical block (0 for a hole), up to `count` blocks. */
  const blockMap = (ino: number, inode: Inode, count: number): Float64Array => {
    const map = new Float64Array(count);
    if (inode.flags & EXTENTS_FL) {
      // logical blocks mapped so far: more than the file has means extents overlap
      let mapped = 0;
      const nodes = new Set<number>();
      const visit = (node: Buffer, depth: number): void => {
        if (node.readUInt16LE(0) !== EXTENT_MAGIC) throw bad(`inode ${ino}: bad extent header`);
        const entries = node.readUInt16LE(2);
        const d = node.readUInt16LE(6);
        if (d !== depth && depth >= 0) throw bad(`inode ${ino}: extent tree depth mismatch`);
        if (12 + entries * 12 > node.length) throw bad(`inode ${ino}: extent node overflows`);
        for (let i = 0; i < entries; i++) {
          const e = node.subarray(12 + i * 12, 24 + i * 12);
          const logical = e.readUInt32LE(0);
          if (d === 0) {
            let len = e.readUInt16LE(4);
            const uninit = len > 32768;
            if (uninit) len -= 32768;
            const start = e.readUInt16LE(6) * 2 ** 32 + e.readUInt32LE(8);
            if (start + len > blocks) throw bad(`inode ${ino}: extent points outside the file system`);
            const n = Math.max(0, Math.min(len, count - logical));
            mapped += n;
            if (mapped > count) throw bad(`inode ${ino}: extents map some of its ${count} blocks twice`);
            for (let j = 0; j < n; j++) map[logical + j] = uninit ? 0 : start + j;
          } else {
            const leaf = e.readUInt32LE(4) + e.readUInt16LE(8) * 2 ** 32;
            if (nodes.has(leaf)) throw bad(`inode ${ino}: extent tree visits block ${leaf} twice`);
            nodes.add(leaf);
            visit(readBlocks(leaf, 1, `inode ${ino} extent index`), d - 1);
          }
        }
      };
      const root = inode.block;
      if (root.readUInt16LE(0) !== EXTENT_MAGIC) throw bad(`inode ${ino}: bad extent header`);
      const depth = root.readUInt16LE(6);
      if (depth > 5) throw bad(`inode ${ino}: extent tree depth ${depth}`);
      visit(root, depth);
      return map;
    }
    // ext2/3 block map: 12 direct, then single, double and triple indirect
    const per = bs / 4;
    let next = 0;
    const walk = (block: number, level: number): void => {
      if (next >= count) return;
      if (level === 0) {
        if (block >= blocks) throw bad(`inode ${ino}: block ${block} is outside the file system`);
        map[next++] = block;
        return;
      }
      if (block === 0) {
        next += per ** level;
        return;
      }
      const ind = readBlocks(block, 1, `inode ${ino} indirect block`);
      for (let i = 0; i < per && next < count; i++) walk(ind.readUInt32LE(i * 4), level - 1);
    };
    for (let i = 0; i < 12 && next < count; i++) walk(inode.block.readUInt32LE(i * 4), 0);
    for (let level = 1; level <= 3 && next < count; level++)
      walk(inode.block.readUInt32LE((11 + level) * 4), level);
    return map;
  };

  const readData = (ino: number, inode: Inode): Buffer => {
    if (inode.flags & INLINE_DATA_FL) {
      if (inode.size > 60) throw bad(`inode ${ino}: inline data beyond 60 bytes is not supported`);
      return Buffer.from(inode.block.subarray(0, inode.size));
    }
    if (inode.size > blocks * bs)
      throw bad(`inode ${ino}: a file of ${inode.size} bytes in a volume of ${blocks * bs}`);
    if (inode.size > 2 ** 31) throw bad(`inode ${ino}: file of ${inode.size} bytes is too large to inspect`);
    const count = Math.ceil(inode.size / bs);
    const map = blockMap(ino, inode, count);
    const out = Buffer.alloc(inode.size);
    let i = 0;
    while (i < count) {
      // coalesce runs of consecutive blocks into one read
      let run = 1;
      if (map[i] !== 0) while (i + run < count && map[i + run] === map[i]! + run) run++;
      const start = i * bs;
      const len = Math.min(run * bs, inode.size - start);
      if (map[i] !== 0) readBlocks(map[i]!, run, `inode ${ino}`).copy(out, start, 0, len);
      i += run;
    }
    return out;
  };

  const tree = newTree();
  /** Every path of each non-directory inode, to name its file after the walk (further names are hard links). */
  const pathsOf = new Map<number, string[]>();
  /** Where each directory inode was read: a directory reached twice is a loop or a hard-linked directory. */
  const dirAt = new Map<number, string>([[2, '/']]);
  const entryFor = (ino: number, inode: Inode, path: string): TreeEntry => {
    const base = {
      path,
      mode: inode.mode & 0o7777,
      uid: inode.uid,
      gid: inode.gid,
      mtime: inode.mtime,
      source,
    };
    switch (inode.mode & 0o170000) {
      case 0o040000:
        return { ...base, type: 'dir' };
      case 0o100000:
        charge(budget, inode.size, `reading ${printable(path)} (${inode.size} bytes)`);
        return { ...base, type: 'file', data: readData(ino, inode) };
      case 0o120000: {
        const fast = !(inode.flags & (EXTENTS_FL | INLINE_DATA_FL)) && inode.size < 60;
        const target = fast ? inode.block.subarray(0, inode.size) : readData(ino, inode);
        return { ...base, type: 'symlink', target: target.toString('utf8') };
      }
      case 0o020000:
      case 0o060000: {
        const old = inode.block.readUInt32LE(0);
        const nw = inode.block.readUInt32LE(4);
        const dev =
          old !== 0
            ? { major: (old >>> 8) & 0xff, minor: old & 0xff }
            : { major: (nw & 0xfff00) >>> 8, minor: (nw & 0xff) | ((nw >>> 12) & 0xfff00) };
        return { ...base, type: (inode.mode & 0o170000) === 0o020000 ? 'char' : 'block', ...dev };
      }
      case 0o010000:
        return { ...base, type: 'fifo' };
      case 0o140000:
        throw bad(`${printable(path)} is a socket, which has no place in an image`);
      default:
        throw bad(
          `inode ${ino} (${printable(path)}) has unknown file type 0${(inode.mode & 0o170000).toString(8)}`,
        );
    }
  };

  const walk = (ino: number, path: string, depth: number): void => {
    if (depth > 256) throw bad(`directories nest deeper than 256 levels at ${printable(path)}`);
    const dir = readInode(ino);
    const data = readData(ino, dir);
    let off = 0;
    const children: { ino: number; name: string }[] = [];
    while (off + 8 <= data.length) {
      const child = data.readUInt32LE(off);
      const recLen = data.readUInt16LE(off + 4);
      const nameLen = incompat & INCOMPAT_FILETYPE ? data[off + 6]! : data.readUInt16LE(off + 6);
      if (recLen < 8 || off + recLen > data.length || 8 + nameLen > recLen)
        throw bad(`directory ${printable(path)} (inode ${ino}) has a malformed entry at byte ${off}`);
      if (child !== 0) {
        const name = data.toString('utf8', off + 8, off + 8 + nameLen);
        if (name !== '.' && name !== '..') {
          if (name.includes('/') || name === '')
            throw bad(`bad name ${printable(JSON.stringify(name))} in ${printable(path)}`);
          children.push({ ino: child, name });
        }
      }
      off += recLen;
    }
    for (const { ino: c, name } of children) {
      const p = path === '/' ? `/${name}` : `${path}/${name}`;
      charge(budget, ENTRY_COST + p.length, 'listing the file system');
      const seen = pathsOf.get(c);
      if (seen) {
        seen.push(p); // a further name of an inode already read
        continue;
      }
      const first = dirAt.get(c);
      if (first !== undefined)
        throw bad(
          `directory inode ${c} is reached again at ${printable(p)} (first at ${printable(first)}): a directory loop or a hard-linked directory`,
        );
      const inode = readInode(c);
      const isDir = (inode.mode & 0o170000) === 0o040000;
      if (isDir) dirAt.set(c, p);
      tree.set(p, entryFor(c, inode, p));
      if (isDir) walk(c, p, depth + 1);
      else pathsOf.set(c, [p]);
    }
  };
  const rootInode = readInode(2);
  if ((rootInode.mode & 0o170000) !== 0o040000) throw bad('inode 2 (the root) is not a directory');
  tree.set('/', entryFor(2, rootInode, '/'));
  walk(2, '/', 0);
  // Hard links: every further name links to the first one read; canonicalHardlinks
  // then puts them in path order, whatever order the directories list them in.
  for (const paths of pathsOf.values()) {
    if (paths.length === 1) continue;
    const holder = tree.get(paths[0]!)!;
    const { mode, uid, gid, mtime } = holder;
    for (const p of paths.slice(1))
      tree.set(p, { type: 'hardlink', path: p, target: paths[0]!, mode, uid, gid, mtime, source });
  }
  return { info, tree: canonicalHardlinks(tree) };
}
