/**
 * Kernel module metadata: the `.modinfo` section of a Linux kernel module (`.ko`).
 *
 * A module is an ELF relocatable object (ET_REL). modpost and the MODULE_*() macros
 * (include/linux/module.h, scripts/mod/modpost.c) put its metadata into a section
 * named `.modinfo`: NUL-separated `key=value` records, possibly with NUL padding
 * between them, e.g. `license=GPL`, `depends=virtio,virtio_ring`,
 * `alias=virtio:d00000001v*`, `softdep=pre: crc32c`, `name=virtio_net`,
 * `vermagic=6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions `.
 * The section is found through the section header table and its names in
 * `.shstrtab` (ELF gABI, "Sections"); we read only that, nothing else of the ELF.
 *
 * Pure: bytes in, records out. Compressed modules (.ko.xz/.ko.zst/.ko.gz) are
 * recognized and refused; the caller decompresses them (see module-decompress.ts).
 * Anything malformed or truncated is a KjxError MODULE_INVALID naming the module.
 */
import { type Compression, detectCompression } from '../util/compression.js';
import { KjxError } from '../util/errors.js';

/** One `key=value` record of `.modinfo`, in file order. */
export interface ModinfoRecord {
  key: string;
  value: string;
}

/** The parsed `.modinfo` of one module. */
export interface ModInfo {
  /** `name=`; absent in modules built before Linux 5.3 (derive it from the file name then). */
  name: string | undefined;
  /** Hard dependencies (`depends=`, comma-separated, may be empty), in file order. */
  depends: string[];
  /** Every `alias=` pattern (fnmatch-style, e.g. `pci:v00001AF4d00001000sv*sd*bc*sc*i*`). */
  alias: string[];
  /** Every raw `softdep=` value (e.g. `pre: crc32c post: foo`); see `parseSoftdep`. */
  softdep: string[];
  vermagic: string | undefined;
  license: string | undefined;
  /** All records, including those above and any others (description, parmtype, ...). */
  records: ModinfoRecord[];
}

/** Compression formats a module file may come in. */
export type ModuleCompression = Exclude<Compression, 'none'>;

/**
 * Recognize a compressed module by its magic bytes (util/compression.ts), not its
 * name: a mis-named file should still be read correctly.
 */
export function moduleCompression(data: Uint8Array): ModuleCompression | undefined {
  const c = detectCompression(data);
  return c === 'none' ? undefined : c;
}

const SHT_NOBITS = 8;
const ET_REL = 1;
const ELF64_EHDR_SIZE = 64;
const ELF64_SHDR_SIZE = 64;
const SHN_UNDEF = 0;
const SHN_XINDEX = 0xffff;

interface Section {
  name: number;
  type: number;
  offset: number;
  size: number;
  link: number;
}

/** A bounds-checked little/big-endian reader that throws MODULE_INVALID instead of RangeError. */
class Reader {
  constructor(
    private readonly buf: Buffer,
    private readonly little: boolean,
    private readonly fail: (what: string) => never,
  ) {}

  private need(off: number, len: number, what: string): void {
    if (off < 0 || off + len > this.buf.length)
      this.fail(`${what} at offset ${off} is past the end of the file`);
  }

  u16(off: number, what: string): number {
    this.need(off, 2, what);
    return this.little ? this.buf.readUInt16LE(off) : this.buf.readUInt16BE(off);
  }

  u32(off: number, what: string): number {
    this.need(off, 4, what);
    return this.little ? this.buf.readUInt32LE(off) : this.buf.readUInt32BE(off);
  }

  /** A 64-bit field; anything beyond 2^53 cannot be a real offset in a buffer. */
  u64(off: number, what: string): number {
    this.need(off, 8, what);
    const v = this.little ? this.buf.readBigUInt64LE(off) : this.buf.readBigUInt64BE(off);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} ${v} is out of range`);
    return Number(v);
  }
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The raw bytes of the `.modinfo` section of an uncompressed ELF64 module.
 * `path` only names the module in errors.
 */
export function modinfoSection(data: Uint8Array, path: string): Buffer {
  const buf = toBuffer(data);
  const fail = (what: string): never => {
    throw new KjxError('MODULE_INVALID', `${path}: ${what}`, {
      hint: 'the kernel package may be damaged; download it again (or remove it from the cache)',
    });
  };

  const compression = moduleCompression(buf);
  if (compression) fail(`${compression}-compressed; decompress it before reading .modinfo`);
  if (buf.length < 16 || buf.readUInt32BE(0) !== 0x7f454c46) fail('not an ELF file (bad magic)');
  if (buf[4] !== 2) fail(`not ELF64 (EI_CLASS ${buf[4]})`);
  if (buf[5] !== 1 && buf[5] !== 2) fail(`unknown byte order (EI_DATA ${buf[5]})`);
  if (buf.length < ELF64_EHDR_SIZE) fail(`truncated ELF header (${buf.length} bytes)`);
  const r = new Reader(buf, buf[5] === 1, fail);

  const type = r.u16(16, 'e_type');
  if (type !== ET_REL) fail(`not a relocatable object (e_type ${type}); kernel modules are ET_REL`);
  const shoff = r.u64(0x28, 'e_shoff');
  const shentsize = r.u16(0x3a, 'e_shentsize');
  let shnum = r.u16(0x3c, 'e_shnum');
  let shstrndx = r.u16(0x3e, 'e_shstrndx');
  if (shoff === 0) fail('no section header table');
  if (shentsize < ELF64_SHDR_SIZE)
    fail(`section header entry size ${shentsize} is smaller than ${ELF64_SHDR_SIZE}`);

  const readSection = (i: number): Section => {
    const at = shoff + i * shentsize;
    const what = `section header ${i}`;
    return {
      name: r.u32(at, `${what} sh_name`),
      type: r.u32(at + 4, `${what} sh_type`),
      offset: r.u64(at + 0x18, `${what} sh_offset`),
      size: r.u64(at + 0x20, `${what} sh_size`),
      link: r.u32(at + 0x28, `${what} sh_link`),
    };
  };

  // Extended numbering (gABI): with >= SHN_LORESERVE sections the real count and
  // string-table index live in section 0's sh_size and sh_link.
  if (shnum === 0 || shstrndx === SHN_XINDEX) {
    const s0 = readSection(0);
    if (shnum === 0) shnum = s0.size;
    if (shstrndx === SHN_XINDEX) shstrndx = s0.link;
  }
  if (shoff + shnum * shentsize > buf.length)
    fail(`section header table (${shnum} entries) is past the end of the file`);
  if (shstrndx === SHN_UNDEF || shstrndx >= shnum) {
    fail(`section name table index ${shstrndx} is out of range (${shnum} sections)`);
  }

  const sections: Section[] = [];
  for (let i = 0; i < shnum; i++) sections.push(readSection(i));
  const strtab = sections[shstrndx]!;
  const contents = (s: Section, what: string): Buffer => {
    if (s.type === SHT_NOBITS) fail(`${what} has no contents (SHT_NOBITS)`);
    if (s.offset + s.size > buf.length)
      fail(`${what} (offset ${s.offset}, size ${s.size}) is past the end of the file`);
    return buf.subarray(s.offset, s.offset + s.size);
  };
  const names = contents(strtab, 'section name table');

  let found: Section | undefined;
  for (const s of sections) {
    if (s.name >= names.length) continue; // a bad name cannot be ".modinfo"; other sections are not our business
    const end = names.indexOf(0, s.name);
    if (end < 0) continue;
    if (names.toString('latin1', s.name, end) === '.modinfo') {
      if (found) fail('more than one .modinfo section');
      found = s;
    }
  }
  if (!found) fail('no .modinfo section (is this a kernel module?)');
  return contents(found!, '.modinfo section');
}

/**
 * Split a `.modinfo` section into records. Empty strings are alignment padding
 * (the kernel aligns each record); a record without `=` is malformed.
 */
export function parseModinfoRecords(section: Uint8Array, path: string): ModinfoRecord[] {
  const buf = toBuffer(section);
  const records: ModinfoRecord[] = [];
  let start = 0;
  while (start < buf.length) {
    const end = buf.indexOf(0, start);
    // The last record must be NUL-terminated too; a missing NUL means the section was cut.
    if (end < 0) {
      throw new KjxError('MODULE_INVALID', `${path}: .modinfo ends inside a record (missing NUL terminator)`);
    }
    if (end > start) {
      const text = buf.toString('utf8', start, end);
      const eq = text.indexOf('=');
      if (eq <= 0) {
        throw new KjxError(
          'MODULE_INVALID',
          `${path}: .modinfo record "${printable(text)}" is not key=value`,
        );
      }
      records.push({ key: text.slice(0, eq), value: text.slice(eq + 1) });
    }
    start = end + 1;
  }
  return records;
}

function printable(s: string): string {
  const short = s.length > 60 ? `${s.slice(0, 60)}...` : s;
  return short.replace(/[^\x20-\x7e]/g, '?');
}

/** Split a `depends=` value: comma-separated module names, possibly empty. */
export function parseDepends(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** A parsed `softdep=` value (modprobe.d(5): `softdep MODULE pre: A B post: C`). */
export interface Softdep {
  pre: string[];
  post: string[];
}

/**
 * Parse a softdep value like `pre: crc32c post: foo bar`. Names before any
 * `pre:`/`post:` keyword are ignored, as kmod does.
 */
export function parseSoftdep(value: string): Softdep {
  const out: Softdep = { pre: [], post: [] };
  let into: string[] | undefined;
  for (const tok of value.split(/\s+/)) {
    if (tok === '') continue;
    if (tok === 'pre:') into = out.pre;
    else if (tok === 'post:') into = out.post;
    else into?.push(tok);
  }
  return out;
}

/**
 * Read a kernel module's metadata from its (uncompressed) bytes.
 * `path` names the module in errors. Throws KjxError MODULE_INVALID on anything
 * malformed or truncated.
 */
export function parseModinfo(data: Uint8Array, path: string): ModInfo {
  const records = parseModinfoRecords(modinfoSection(data, path), path);
  const info: ModInfo = {
    name: undefined,
    depends: [],
    alias: [],
    softdep: [],
    vermagic: undefined,
    license: undefined,
    records,
  };
  for (const { key, value } of records) {
    switch (key) {
      case 'name':
        info.name = value;
        break;
      case 'depends':
        info.depends.push(...parseDepends(value));
        break;
      case 'alias':
        info.alias.push(value);
        break;
      case 'softdep':
        info.softdep.push(value);
        break;
      case 'vermagic':
        info.vermagic = value;
        break;
      case 'license':
        info.license = value;
        break;
    }
  }
  return info;
}
