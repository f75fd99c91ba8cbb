/**
 * Reader for tar archives, the inner format of a .deb (control.tar, data.tar).
 *
 * Formats, as deb(5) allows them:
 * - POSIX ustar (POSIX.1-2017, "pax" utility, section "ustar Interchange Format"):
 *   512-byte headers, octal numeric fields, name = prefix "/" name.
 * - POSIX pax extended headers (same page, "pax Extended Header"): typeflag 'x'
 *   (applies to the next entry) and 'g' (applies to all that follow), records
 *   "<len> <key>=<value>\n"; we honour path, linkpath, size, mtime, uid, gid.
 * - GNU tar (GNU tar manual, "Basic Tar Format" / tar.h): magic "ustar  \0",
 *   long names in 'L' and long link names in 'K' pseudo-entries, and base-256
 *   numeric fields (high bit of the first byte set) for large sizes, ids and
 *   negative times.
 * - old v7 headers (no magic), where a directory is a regular entry ending in "/".
 *
 * Pure and synchronous: one Buffer in, entries out. Entry data are views into the
 * input buffer (no copies). Anything malformed or truncated is a KjxError
 * DEB_INVALID naming the archive and the offset; this module never decides what is
 * *safe* to extract, that is stage.ts's job.
 */
import { KjxError, type WarnFn } from '../util/errors.js';
import { printable as printableName } from '../util/printable.js';

/** Kinds of entries we accept; deb(5) says unknown typeflags are an error. */
export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** One entry of a tar archive, with pax and GNU long-name headers already applied. */
export interface TarEntry {
  /** The name exactly as archived (e.g. "./usr/bin/x"); not normalized, not trusted. */
  name: string;
  type: TarEntryType;
  /** Permission bits only (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (may be negative in GNU base-256 or pax headers). */
  mtime: number;
  /** Bytes of data; always 0 for header-only types (dir, links, devices, fifo). */
  size: number;
  /** Target of a symlink or hardlink, as archived; "" for other types. */
  linkname: string;
  /** Device numbers for char and block devices; 0 for other types. */
  devmajor: number;
  devminor: number;
  /** File content, a view into the archive buffer; empty for non-files. */
  data: Buffer;
}

/** Options for `parseTar`. */
export interface ParseTarOptions {
  /** Receives recoverable oddities (e.g. a missing end-of-archive marker). */
  warn?: WarnFn;
}

const BLOCK = 512;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Values from pax headers that override header fields. `undefined` means "not set". */
interface Overrides {
  path?: string | undefined;
  linkpath?: string | undefined;
  size?: number | undefined;
  mtime?: number | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
}

/**
 * Parse a whole tar archive held in memory.
 *
 * The archive ends at the first all-zero block. Like dpkg, an archive that ends
 * exactly on a block boundary without that marker is accepted (with a TAR_NO_END
 * warning): inside a .deb the ar size and the compressor already catch truncation.
 *
 * @param data the uncompressed archive
 * @param name what to call it in error messages (e.g. "busybox_1.35.deb: data.tar.xz")
 * @throws KjxError DEB_INVALID on a bad checksum, malformed field, unknown entry
 *   type, non-UTF-8 name or truncation, naming `name` and the offset
 */
export function parseTar(data: Buffer, name: string, options: ParseTarOptions = {}): TarEntry[] {
  const entries: TarEntry[] = [];
  let global: Overrides = {};
  let local: Overrides = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  // Offset of the first metadata header not yet consumed by a real entry.
  let pendingMeta: number | undefined;
  let off = 0;

  for (;;) {
    if (off === data.length) {
      if (pendingMeta !== undefined) {
        throw invalid(name, pendingMeta, 'truncated: extended header is not followed by an entry');
      }
      options.warn?.({
        code: 'TAR_NO_END',
        message: `${name}: no end-of-archive marker after ${entries.length} entries`,
      });
      break;
    }
    if (off + BLOCK > data.length) {
      throw invalid(name, off, `truncated header (${data.length - off} of ${BLOCK} bytes)`);
    }
    const h = data.subarray(off, off + BLOCK);
    if (isZeroBlock(h)) {
      if (pendingMeta !== undefined) {
        throw invalid(name, pendingMeta, 'extended header is followed by the end of the archive');
      }
      break;
    }
    verifyChecksum(h, name, off);

    const flag = String.fromCharCode(h[156]!);
    const isMeta = flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K';
    const headerSize = numeric(h, 124, 12, 'size', name, off);
    // A pax size describes the entry's data, never that of another metadata header.
    const size = isMeta ? headerSize : (local.size ?? global.size ?? headerSize);

    // Precedence: this entry's pax header, then GNU long names, then global pax, then the
    // header. The header's name is only decoded when used: GNU tar cuts long names at 100
    // bytes, possibly inside a UTF-8 sequence, and metadata headers' names mean nothing.
    const finalName = isMeta ? '' : (local.path ?? longName ?? global.path ?? headerName(h, name, off));
    const type = isMeta ? undefined : entryType(flag, finalName, name, off);
    const payloadSize = type === undefined || type === 'file' ? size : 0;
    const start = off + BLOCK;
    const padded = start + Math.ceil(payloadSize / BLOCK) * BLOCK;
    if (padded > data.length) {
      throw invalid(
        name,
        off,
        `${isMeta ? `extended header '${flag}'` : `entry "${printableName(finalName)}"`} is truncated (${Math.max(0, data.length - start)} of ${payloadSize} bytes of data and padding present)`,
      );
    }
    const payload = data.subarray(start, start + payloadSize);

    if (isMeta) {
      pendingMeta ??= off;
      if (flag === 'x') local = mergeOverrides(local, parsePax(payload, name, off));
      else if (flag === 'g') global = mergeOverrides(global, parsePax(payload, name, off));
      else if (flag === 'L') longName = cstring(payload, 0, payload.length, name, off);
      else longLink = cstring(payload, 0, payload.length, name, off);
      off = padded;
      continue;
    }

    if (finalName === '') throw invalid(name, off, 'entry has an empty name');
    const device = type === 'char' || type === 'block';
    entries.push({
      name: finalName,
      type: type!,
      mode: numeric(h, 100, 8, 'mode', name, off) & 0o7777,
      uid: local.uid ?? global.uid ?? numeric(h, 108, 8, 'uid', name, off),
      gid: local.gid ?? global.gid ?? numeric(h, 116, 8, 'gid', name, off),
      mtime: local.mtime ?? global.mtime ?? numeric(h, 136, 12, 'mtime', name, off),
      size: payloadSize,
      linkname:
        type === 'symlink' || type === 'hardlink'
          ? (local.linkpath ?? longLink ?? global.linkpath ?? cstring(h, 157, 100, name, off))
          : '',
      devmajor: device ? numeric(h, 329, 8, 'devmajor', name, off) : 0,
      devminor: device ? numeric(h, 337, 8, 'devminor', name, off) : 0,
      data: payload,
    });
    local = {};
    longName = undefined;
    longLink = undefined;
    pendingMeta = undefined;
    off = padded;
  }
  return entries;
}

function headerName(h: Buffer, name: string, off: number): string {
  const base = cstring(h, 0, 100, name, off);
  // Only POSIX ustar has a prefix field; GNU keeps atime/ctime there.
  if (h.toString('latin1', 257, 263) !== 'ustar\0') return base;
  const prefix = cstring(h, 345, 155, name, off);
  return prefix === '' ? base : `${prefix}/${base}`;
}

function entryType(flag: string, entryName: string, name: string, off: number): TarEntryType {
  switch (flag) {
    case '\0':
      // Pre-POSIX archives mark directories only by a trailing slash. Only for this
      // flag: a GNU header's name field may be a long name cut right after a "/".
      return entryName.endsWith('/') ? 'dir' : 'file';
    case '0':
    case '7': // contiguous file: a regular file everywhere that matters
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
    default:
      throw invalid(
        name,
        off,
        `entry "${printableName(entryName)}" has unsupported type '${printable(flag)}' (deb(5) allows only ustar, pax and GNU long-name entries)`,
      );
  }
}

function isZeroBlock(h: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (h[i] !== 0) return false;
  return true;
}

/** The checksum is the byte sum of the header with its own field read as spaces. */
function verifyChecksum(h: Buffer, name: string, off: number): void {
  const stored = numeric(h, 148, 8, 'checksum', name, off);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b < 128 ? b : b - 256;
  }
  // Some historic tars summed signed chars; POSIX says unsigned. Accept both, like GNU tar.
  if (stored !== unsigned && stored !== signed) {
    throw invalid(name, off, `bad header checksum (stored ${stored}, computed ${unsigned})`);
  }
}

/**
 * A numeric header field: octal ASCII padded with spaces/NULs, or GNU base-256
 * (first byte's high bit set; bit 0x40 set means negative, two's complement).
 */
function numeric(h: Buffer, start: number, len: number, field: string, name: string, off: number): number {
  const first = h[start]!;
  if (first & 0x80) {
    const inv = first & 0x40 ? 0xff : 0;
    let x = 0n;
    for (let i = 0; i < len; i++) {
      let c = h[start + i]! ^ inv;
      if (i === 0) c &= 0x7f;
      x = (x << 8n) | BigInt(c);
    }
    // -a-1 == ~a: undo the inversion for negative numbers.
    const v = inv ? -x - 1n : x;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw invalid(name, off, `${field} field is out of range`);
    }
    return Number(v);
  }
  const text = h
    .toString('latin1', start, start + len)
    .replace(/^[ \0]+|[ \0]+$/g, '')
    // Some writers end the field with NUL then garbage-free spaces; cut at the first NUL.
    .split('\0')[0]!
    .trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw invalid(name, off, `${field} field "${printable(text)}" is not octal`);
  return Number.parseInt(text, 8);
}

/** A NUL-terminated (or field-filling) string; names must be UTF-8 so paths stay exact. */
function cstring(buf: Buffer, start: number, len: number, name: string, off: number): string {
  const end = Math.min(start + len, buf.length);
  const nul = buf.indexOf(0, start);
  const stop = nul === -1 || nul > end ? end : nul;
  try {
    return utf8.decode(buf.subarray(start, stop));
  } catch (cause) {
    throw new KjxError('DEB_INVALID', `${name}: a name at offset ${off} is not valid UTF-8`, {
      cause,
      hint: 'kjx keeps paths as text; a name that is not UTF-8 cannot be represented exactly',
    });
  }
}

/** Records of a pax extended header: "<decimal length> <key>=<value>\n", length counting itself. */
function parsePax(buf: Buffer, name: string, off: number): Overrides {
  const out: Overrides = {};
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) break; // some writers pad the header data with NULs
    const sp = buf.indexOf(0x20, pos);
    const lenText = sp === -1 ? '' : buf.toString('latin1', pos, sp);
    if (!/^[0-9]{1,9}$/.test(lenText)) throw invalid(name, off, 'malformed pax record length');
    const len = Number(lenText);
    if (len <= sp - pos + 1 || pos + len > buf.length || buf[pos + len - 1] !== 0x0a) {
      throw invalid(name, off, `malformed pax record at byte ${pos} of the extended header`);
    }
    let record: string;
    try {
      record = utf8.decode(buf.subarray(sp + 1, pos + len - 1));
    } catch (cause) {
      throw new KjxError('DEB_INVALID', `${name}: pax record at offset ${off} is not valid UTF-8`, { cause });
    }
    const eq = record.indexOf('=');
    if (eq <= 0) throw invalid(name, off, 'pax record without "key="');
    applyPax(out, record.slice(0, eq), record.slice(eq + 1), name, off);
    pos += len;
  }
  return out;
}

function applyPax(out: Overrides, key: string, value: string, name: string, off: number): void {
  if (key.startsWith('GNU.sparse.')) {
    throw invalid(name, off, 'sparse files are not supported (dpkg does not support them either)');
  }
  // POSIX: an empty value deletes the keyword, i.e. falls back to the header field.
  const set = value === '' ? undefined : value;
  switch (key) {
    case 'path':
      out.path = set;
      return;
    case 'linkpath':
      out.linkpath = set;
      return;
    case 'size':
    case 'uid':
    case 'gid':
      if (set !== undefined && !/^[0-9]+$/.test(set))
        throw invalid(name, off, `pax ${key} "${set}" is not a number`);
      out[key] = set === undefined ? undefined : safeNumber(Number(set), key, name, off);
      return;
    case 'mtime':
      if (set !== undefined && !/^-?[0-9]+(\.[0-9]*)?$/.test(set)) {
        throw invalid(name, off, `pax mtime "${set}" is not a number`);
      }
      out.mtime = set === undefined ? undefined : safeNumber(Math.floor(Number(set)), key, name, off);
      return;
    default:
      // atime, ctime, uname, gname, SCHILY.*, LIBARCHIVE.*: nothing the Tree keeps.
      return;
  }
}

function safeNumber(n: number, key: string, name: string, off: number): number {
  if (!Number.isSafeInteger(n)) throw invalid(name, off, `pax ${key} is out of range`);
  return n;
}

/** Later records win; a key explicitly set to undefined (deleted) removes the earlier value. */
function mergeOverrides(base: Overrides, next: Overrides): Overrides {
  return { ...base, ...next };
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function invalid(name: string, offset: number, what: string): KjxError {
  return new KjxError('DEB_INVALID', `${name}: ${what} at offset ${offset}`, {
    hint: 'the package is damaged or was not made by a tar that dpkg understands; download it again',
  });
}
