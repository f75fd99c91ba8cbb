/**
 * Reader of ISO 9660 file systems (ECMA-119, 4th edition) with the Rock Ridge
 * extensions (IEEE P1282 RRIP 1.12 over SUSP 1.12, IEEE P1281), the way
 * `kjx inspect` needs them: every file with its POSIX name, type, mode, owner,
 * link target and device number, and El Torito boot entries (El Torito 1.0).
 *
 * Volume descriptors start at sector 16 (2048-byte logical sectors); the primary
 * one holds the root directory record. A directory is a run of records that never
 * cross a sector boundary; each record's System Use area carries SUSP entries:
 * PX (mode, links, uid, gid), PN (device), SL (symlink), NM (name), CE (the rest
 * continues elsewhere), CL/RE (a relocated deep directory). Without Rock Ridge,
 * names are the ISO names without ";1" and files are 0444 root.
 *
 * Pure: a ByteSource in, a Tree out. A truncated or damaged image is
 * ARTIFACT_INVALID naming what is wrong and where; nothing else escapes.
 *
 * The image may come from anyone, so the work is bounded by the volume: a
 * directory extent is read once (reached again: a loop), a System Use
 * continuation is at most a few sectors, and the directory and file bytes read
 * together may not pass the volume's size (extents that overlap or repeat under
 * different names would otherwise multiply it); files sharing one extent are hard
 * links, read once. File contents and entries are charged to the caller's budget.
 */
import { type EntrySource, newTree, type Tree, type TreeEntry } from '../rootfs/tree.js';
import { type Budget, charge, ENTRY_COST } from '../util/budget.js';
import { KjxError } from '../util/errors.js';
import { printable } from '../util/printable.js';
import type { ByteSource } from './byte-source.js';

const SECTOR = 2048;
/** SUSP continuation areas are meant to fit one logical block; a few are allowed. */
const MAX_CONTINUATION = 4 * SECTOR;
const S_IFMT = 0o170000;

export interface IsoInfo {
  volumeId: string;
  /** Bytes the volume says it has (may be less than the file: appended partitions). */
  volumeBytes: number;
  rockRidge: boolean;
  joliet: boolean;
  /** El Torito boot entries: platform "bios" (0x00) or "uefi" (0xEF), and the image's LBA. */
  boot: { platform: 'bios' | 'uefi' | string; lba: number }[];
}

export interface IsoResult {
  info: IsoInfo;
  tree: Tree;
}

/** Does the source hold an ISO 9660 volume (a "CD001" descriptor at sector 16)? */
export function isIso9660(src: ByteSource): boolean {
  if (src.size < 17 * SECTOR) return false;
  return src.read(16 * SECTOR + 1, 5).toString('latin1') === 'CD001';
}

function both32(b: Buffer, off: number): number {
  return b.readUInt32LE(off);
}

interface DirRecord {
  extent: number;
  size: number;
  flags: number;
  isoName: string;
  su: Buffer;
  /** Where the record is, for messages. */
  at: number;
}

interface RockRidge {
  mode?: number;
  uid?: number;
  gid?: number;
  dev?: { major: number; minor: number };
  name?: string;
  symlink?: string;
  /** CL: the directory was relocated to this extent. */
  childLink?: number;
  /** RE: this is the relocated directory itself, listed where it does not belong. */
  relocated?: boolean;
  mtime?: number;
}

/**
 * Read the whole volume. `source` becomes each entry's source. File data are
 * read eagerly (images kjx writes are tens of megabytes).
 */
export function readIso9660(
  src: ByteSource,
  source: EntrySource = { kind: 'input', ref: src.name },
  budget?: Budget,
): IsoResult {
  const bad = (what: string): KjxError =>
    new KjxError('ARTIFACT_INVALID', `${src.name}: ${what}`, {
      hint: 'the ISO image is truncated or damaged; build or download it again',
    });
  const read = (off: number, len: number, what: string): Buffer => {
    if (off < 0 || len < 0 || off + len > src.size)
      throw bad(`${what}: ${len} bytes at offset ${off} are past the end of the ${src.size}-byte file`);
    return src.read(off, len);
  };

  if (!isIso9660(src)) throw bad('no ISO 9660 volume descriptor at sector 16');
  let pvd: Buffer | undefined;
  let joliet = false;
  let bootCatalog: number | undefined;
  for (let s = 16; s < 16 + 64; s++) {
    const vd = read(s * SECTOR, SECTOR, `volume descriptor ${s}`);
    if (vd.toString('latin1', 1, 6) !== 'CD001') throw bad(`volume descriptor at sector ${s} has no CD001`);
    const type = vd[0]!;
    if (type === 255) break;
    if (type === 1 && !pvd) pvd = vd;
    if (type === 2 && vd[88] === 0x25 && vd[89] === 0x2f) joliet = true;
    if (type === 0 && vd.toString('latin1', 7, 30).startsWith('EL TORITO SPECIFICATION'))
      bootCatalog = vd.readUInt32LE(71);
  }
  if (!pvd) throw bad('no primary volume descriptor');
  const blockSize = pvd.readUInt16LE(128);
  if (blockSize !== SECTOR) throw bad(`logical block size ${blockSize} (only 2048 is supported)`);
  const volumeBytes = both32(pvd, 80) * blockSize;
  if (volumeBytes > src.size) {
    throw bad(
      `the volume is ${volumeBytes} bytes but the file has only ${src.size}: the ISO image is truncated`,
    );
  }
  const volumeId = pvd.toString('latin1', 40, 72).trim();

  const parseRecord = (b: Buffer, at: number): DirRecord => {
    const len = b[0]!;
    const nameLen = b[32]!;
    if (len < 34 || 33 + nameLen > len) throw bad(`malformed directory record at offset ${at}`);
    const suStart = 33 + nameLen + (nameLen % 2 === 0 ? 1 : 0);
    return {
      extent: both32(b, 2),
      size: both32(b, 10),
      flags: b[25]!,
      isoName: b.toString('latin1', 33, 33 + nameLen),
      su: b.subarray(Math.min(suStart, len), len),
      at,
    };
  };

  const root = parseRecord(pvd.subarray(156, 156 + 34), 16 * SECTOR + 156);
  // SUSP "SP" in the root's "." record says how many bytes to skip in each System Use area.
  const rootDot = read(root.extent * SECTOR, Math.min(root.size, SECTOR), 'root directory');
  let suspSkip = 0;
  let rockRidge = false;
  {
    const first = parseRecord(rootDot.subarray(0, rootDot[0]!), root.extent * SECTOR);
    if (first.su.length >= 7 && first.su.toString('latin1', 0, 2) === 'SP' && first.su[4] === 0xbe) {
      suspSkip = first.su[6]!;
      rockRidge = true;
    }
  }

  const susp = (rec: DirRecord): RockRidge => {
    const rr: RockRidge = {};
    if (!rockRidge) return rr;
    let area: Buffer = rec.su.subarray(suspSkip);
    let name = '';
    let link: string[] | undefined;
    let linkPart = '';
    let hops = 0;
    while (area.length >= 4) {
      let next: Buffer | undefined;
      let off = 0;
      while (off + 4 <= area.length) {
        const sig = area.toString('latin1', off, off + 2);
        const len = area[off + 2]!;
        if (len < 4 || off + len > area.length) break;
        const e = area.subarray(off, off + len);
        switch (sig) {
          case 'PX':
            if (len >= 36) {
              rr.mode = both32(e, 4);
              rr.uid = both32(e, 20);
              rr.gid = both32(e, 28);
            }
            break;
          case 'PN':
            if (len >= 20) {
              const hi = both32(e, 4);
              const lo = both32(e, 12);
              // as Linux reads it (fs/isofs/rock.c): major and minor each on their own,
              // unless high is 0 and low looks like an old 16-bit dev_t
              rr.dev =
                lo & ~0xff && hi === 0 ? { major: lo >>> 8, minor: lo & 0xff } : { major: hi, minor: lo };
            }
            break;
          case 'NM': {
            const flags = e[4]!;
            if (!(flags & 0x06)) name += e.toString('utf8', 5);
            break;
          }
          case 'SL': {
            link ??= [];
            let p = 5;
            while (p + 2 <= e.length) {
              const cflags = e[p]!;
              const clen = e[p + 1]!;
              const text = e.toString('utf8', p + 2, p + 2 + clen);
              let comp = text;
              if (cflags & 0x02) comp = '.';
              else if (cflags & 0x04) comp = '..';
              else if (cflags & 0x08) comp = '';
              linkPart += comp;
              if (!(cflags & 0x01)) {
                link.push(linkPart);
                linkPart = '';
              }
              p += 2 + clen;
            }
            break;
          }
          case 'CE': {
            const block = both32(e, 4);
            const offset = both32(e, 12);
            const length = both32(e, 20);
            if (length > MAX_CONTINUATION)
              throw bad(`continuation area of ${length} bytes for ${printable(rec.isoName)}`);
            next = read(block * SECTOR + offset, length, `continuation area of ${rec.isoName}`);
            break;
          }
          case 'CL':
            rr.childLink = both32(e, 4);
            break;
          case 'RE':
            rr.relocated = true;
            break;
          case 'TF': {
            // flags: 1 creation, 2 modify, ...; 7-byte dates unless bit 0x80 (long form)
            const flags = e[4]!;
            const long = (flags & 0x80) !== 0;
            const size = long ? 17 : 7;
            let p = 5;
            if (flags & 0x01) p += size;
            if (flags & 0x02 && !long && p + 7 <= e.length) rr.mtime = isoDate7(e.subarray(p, p + 7));
            break;
          }
          case 'ST':
            off = area.length;
            continue;
        }
        off += len;
      }
      if (!next || ++hops > 64) break;
      area = next;
    }
    if (name) rr.name = name;
    if (link) {
      // a leading "" component is the root: "/a/b"
      rr.symlink = link.length > 0 && link[0] === '' ? `/${link.slice(1).join('/')}` : link.join('/');
    }
    return rr;
  };

  const tree = newTree();
  const rootRR = susp(parseRecord(rootDot.subarray(0, rootDot[0]!), root.extent * SECTOR));
  tree.set('/', {
    type: 'dir',
    path: '/',
    mode: rootRR.mode !== undefined ? rootRR.mode & 0o7777 : 0o555,
    uid: rootRR.uid ?? 0,
    gid: rootRR.gid ?? 0,
    mtime: rootRR.mtime ?? 0,
    source,
  });
  const inodeByExtent = new Map<number, string>();
  const dirAt = new Map<number, string>();
  /** Directory and file bytes read: more than the volume holds means extents overlap or repeat. */
  let bytesRead = 0;
  const readCounted = (off: number, len: number, what: string): Buffer => {
    bytesRead += len;
    if (bytesRead > volumeBytes)
      throw bad(`${what}: more bytes are read than the ${volumeBytes}-byte volume holds: extents overlap`);
    return read(off, len, what);
  };

  const walk = (dirExtent: number, dirSize: number, dirPath: string, depth: number): void => {
    if (depth > 64) throw bad(`directories nest deeper than 64 levels at ${printable(dirPath)}`);
    const first = dirAt.get(dirExtent);
    if (first !== undefined)
      throw bad(
        `directory ${printable(dirPath)} is the extent of ${printable(first)} again: a directory loop or a shared directory`,
      );
    dirAt.set(dirExtent, dirPath);
    const data = readCounted(dirExtent * SECTOR, dirSize, `directory ${printable(dirPath)}`);
    let off = 0;
    let index = 0;
    const pending: { rec: DirRecord; parts: DirRecord[] }[] = [];
    while (off < data.length) {
      const len = data[off]!;
      if (len === 0) {
        off = (Math.floor(off / SECTOR) + 1) * SECTOR; // records never cross a sector
        continue;
      }
      if (off + len > data.length)
        throw bad(`directory record at offset ${dirExtent * SECTOR + off} overruns ${printable(dirPath)}`);
      const rec = parseRecord(data.subarray(off, off + len), dirExtent * SECTOR + off);
      off += len;
      if (index++ < 2) continue; // "." and ".."
      const last = pending[pending.length - 1];
      if (last && last.rec.flags & 0x80)
        last.parts.push(rec); // multi-extent file continues
      else pending.push({ rec, parts: [rec] });
      if (last && last.rec.flags & 0x80 && !(rec.flags & 0x80)) last.rec = { ...last.rec, flags: rec.flags };
    }
    for (const { rec, parts } of pending) {
      const rr = susp(parts[0]!);
      if (rr.relocated) continue; // listed again where it belongs, through CL
      const name = rr.name ?? isoToName(rec.isoName, rec.flags);
      if (name === '' || name === '.' || name === '..' || name.includes('/'))
        throw bad(`bad file name ${printable(JSON.stringify(name))} in ${printable(dirPath)}`);
      const path = dirPath === '/' ? `/${name}` : `${dirPath}/${name}`;
      charge(budget, ENTRY_COST + path.length, 'listing the ISO');
      const isDir = (rec.flags & 0x02) !== 0 || rr.childLink !== undefined;
      const type = rr.mode !== undefined ? rr.mode & S_IFMT : isDir ? 0o040000 : 0o100000;
      const base = {
        path,
        mode: rr.mode !== undefined ? rr.mode & 0o7777 : isDir ? 0o555 : 0o444,
        uid: rr.uid ?? 0,
        gid: rr.gid ?? 0,
        mtime: rr.mtime ?? 0,
        source,
      };
      let entry: TreeEntry;
      if (type === 0o040000) {
        entry = { ...base, type: 'dir' };
        tree.set(path, entry);
        if (rr.childLink !== undefined) {
          const dot = read(rr.childLink * SECTOR, SECTOR, `relocated directory ${printable(path)}`);
          const d = parseRecord(dot.subarray(0, dot[0]!), rr.childLink * SECTOR);
          walk(d.extent, d.size, path, depth + 1);
        } else walk(rec.extent, rec.size, path, depth + 1);
        continue;
      }
      if (type === 0o120000) entry = { ...base, type: 'symlink', target: rr.symlink ?? '' };
      else if (type === 0o020000 || type === 0o060000)
        entry = {
          ...base,
          type: type === 0o020000 ? 'char' : 'block',
          major: rr.dev?.major ?? 0,
          minor: rr.dev?.minor ?? 0,
        };
      else if (type === 0o010000) entry = { ...base, type: 'fifo' };
      else if (type === 0o100000) {
        const size = parts.reduce((n, p) => n + p.size, 0);
        const first = inodeByExtent.get(parts[0]!.extent);
        if (first !== undefined && size > 0) {
          entry = { ...base, type: 'hardlink', target: first };
        } else {
          charge(budget, size, `reading ${printable(path)} (${size} bytes)`);
          const chunks = parts.map((p) => readCounted(p.extent * SECTOR, p.size, `file ${printable(path)}`));
          entry = { ...base, type: 'file', data: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) };
          if (size > 0) inodeByExtent.set(parts[0]!.extent, path);
        }
      } else throw bad(`${printable(path)} has unknown file type 0${type.toString(8)}`);
      tree.set(path, entry);
    }
  };
  walk(root.extent, root.size, '/', 0);

  const boot: IsoInfo['boot'] = [];
  if (bootCatalog !== undefined && (bootCatalog + 1) * SECTOR <= src.size) {
    const cat = src.read(bootCatalog * SECTOR, SECTOR);
    // validation entry (32 bytes), initial/default entry, then section headers + entries
    if (cat[0] === 1 && cat[30] === 0x55 && cat[31] === 0xaa) {
      let platform = cat[1]!;
      const name = (p: number) => (p === 0 ? 'bios' : p === 0xef ? 'uefi' : `0x${p.toString(16)}`);
      if (cat[32] === 0x88) boot.push({ platform: name(platform), lba: cat.readUInt32LE(32 + 8) });
      for (let off = 64; off + 32 <= SECTOR; off += 32) {
        const kind = cat[off]!;
        if (kind === 0x90 || kind === 0x91) {
          platform = cat[off + 1]!;
          const count = cat.readUInt16LE(off + 2);
          for (let i = 1; i <= count && off + i * 32 + 32 <= SECTOR; i++) {
            const e = off + i * 32;
            if (cat[e] === 0x88) boot.push({ platform: name(platform), lba: cat.readUInt32LE(e + 8) });
          }
          off += count * 32;
          if (kind === 0x91) break;
        } else if (kind === 0) break;
      }
    }
  }
  return { info: { volumeId, volumeBytes, rockRidge, joliet, boot }, tree };
}

/** "NAME.EXT;1" -> "name.ext"; directories have no version. */
function isoToName(isoName: string, flags: number): string {
  let n = isoName;
  if (!(flags & 0x02)) n = n.replace(/;[0-9]+$/, '').replace(/\.$/, '');
  return n.toLowerCase();
}

/** ECMA-119 9.1.5 recording date: years since 1900, month, day, h, m, s, GMT offset in 15 min. */
function isoDate7(b: Buffer): number {
  const t = Date.UTC(1900 + b[0]!, b[1]! - 1, b[2]!, b[3]!, b[4]!, b[5]!) / 1000;
  return t - b.readInt8(6) * 15 * 60;
}
