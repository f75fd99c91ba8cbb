/**
 * ELF reader: just enough of the System V ABI / ELF gABI (generic ABI, chapter 4
 * "Object Files" and chapter 5 "Program Loading and Dynamic Linking",
 * https://refspecs.linuxfoundation.org/elf/gabi4+/contents.html) to know what an
 * object needs at run time: its program interpreter (PT_INTERP) and, from the
 * dynamic segment, DT_NEEDED, DT_SONAME, DT_RPATH and DT_RUNPATH.
 *
 * We read program headers, never section headers: they are what the kernel and
 * ld.so use, and a stripped or hand-made object may have no section headers at all.
 * Both classes (ELF32, ELF64) and both byte orders are read.
 *
 * Pure format code: bytes in, record out. Every offset is checked against the
 * buffer, so truncated or hostile input ends in `KjxError('ELF_INVALID')`, never in
 * a RangeError.
 */
import { KjxError } from '../util/errors.js';

/** e_type values (gABI "ELF Header"). */
export const ET = { NONE: 0, REL: 1, EXEC: 2, DYN: 3, CORE: 4 } as const;

/** e_machine values kjx knows by name (gABI; psABI supplements). */
export const EM = {
  I386: 3,
  PPC64: 21,
  S390: 22,
  ARM: 40,
  X86_64: 62,
  AARCH64: 183,
  RISCV: 243,
} as const;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;

const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

/** e_phnum's escape value: the real count is in section header 0's sh_info (gABI). */
const PN_XNUM = 0xffff;

/** What kjx needs to know about one ELF object. Absent fields are absent in the file. */
export interface ElfInfo {
  /** EI_CLASS: 32 for ELFCLASS32, 64 for ELFCLASS64. */
  class: 32 | 64;
  /** EI_DATA: byte order of every multi-byte field. */
  endian: 'little' | 'big';
  /** e_type, see `ET`. */
  type: number;
  /** e_machine, see `EM`. */
  machine: number;
  /** e_flags; processor-specific (e.g. the ARM hard-float ABI bit). */
  flags: number;
  /** PT_INTERP: the program interpreter the kernel maps, e.g. /lib64/ld-linux-x86-64.so.2. */
  interp?: string;
  /** DT_NEEDED names in file order (the order ld.so loads them in). */
  needed: string[];
  /** DT_SONAME. */
  soname?: string;
  /** DT_RPATH as written: colon-separated, may contain $ORIGIN. */
  rpath?: string;
  /** DT_RUNPATH as written: colon-separated, may contain $ORIGIN. */
  runpath?: string;
}

/** True if `data` starts with the ELF magic "\x7fELF". Says nothing about validity. */
export function isElf(data: Uint8Array): boolean {
  return data.length >= 4 && data[0] === 0x7f && data[1] === 0x45 && data[2] === 0x4c && data[3] === 0x46;
}

interface ProgramHeader {
  type: number;
  offset: bigint;
  vaddr: bigint;
  filesz: bigint;
}

/**
 * Read the header, program headers, PT_INTERP and the dynamic segment of an ELF
 * object. `name` (usually its path) prefixes every error message.
 *
 * @throws KjxError ELF_INVALID if `data` is not ELF or is truncated or malformed.
 */
export function parseElf(data: Buffer, name: string): ElfInfo {
  // A declaration, not an arrow, so that `never` narrows types after each call.
  function fail(what: string): never {
    throw new KjxError('ELF_INVALID', `${name}: ${what}`, {
      hint: 'the file is truncated or not a valid ELF object; check the package or input it comes from',
    });
  }
  if (!isElf(data)) fail('not an ELF file (bad magic)');
  if (data.length < 16) fail(`truncated ELF identification (${data.length} of 16 bytes)`);

  const cls = data[4];
  if (cls !== 1 && cls !== 2) fail(`unknown ELF class ${cls}`);
  const enc = data[5];
  if (enc !== 1 && enc !== 2) fail(`unknown ELF data encoding ${enc}`);
  if (data[6] !== 1) fail(`unknown ELF identification version ${data[6]}`);
  const is64 = cls === 2;
  const le = enc === 1;

  /** Throws unless [off, off+len) lies inside the buffer; bigint so 64-bit offsets cannot wrap. */
  const span = (off: bigint, len: bigint, what: string): number => {
    if (off < 0n || len < 0n || off + len > BigInt(data.length)) {
      fail(`${what} (offset ${off}, ${len} bytes) lies outside the file (${data.length} bytes)`);
    }
    return Number(off);
  };
  const u16 = (o: number) => (le ? data.readUInt16LE(o) : data.readUInt16BE(o));
  const u32 = (o: number) => (le ? data.readUInt32LE(o) : data.readUInt32BE(o));
  // Elf32_Addr/Off vs Elf64_Addr/Off.
  const word = (o: number): bigint =>
    is64 ? (le ? data.readBigUInt64LE(o) : data.readBigUInt64BE(o)) : BigInt(u32(o));
  // d_tag is signed (Elf32_Sword / Elf64_Sxword); the tags we look for are small.
  const tag = (o: number): number =>
    is64
      ? Number(le ? data.readBigInt64LE(o) : data.readBigInt64BE(o))
      : le
        ? data.readInt32LE(o)
        : data.readInt32BE(o);

  const ehsize = is64 ? 64 : 52;
  if (data.length < ehsize) fail(`truncated ELF header (${data.length} of ${ehsize} bytes)`);
  const type = u16(16);
  const machine = u16(18);
  const flags = u32(is64 ? 48 : 36);
  const phoff = word(is64 ? 32 : 28);
  const shoff = word(is64 ? 40 : 32);
  const phentsize = u16(is64 ? 54 : 42);
  let phnum = u16(is64 ? 56 : 44);
  const shentsize = u16(is64 ? 58 : 46);

  if (phnum === PN_XNUM) {
    const shsize = is64 ? 64 : 40;
    if (shoff === 0n || shentsize < shsize) fail('e_phnum is PN_XNUM but there is no section header 0');
    const sh0 = span(shoff, BigInt(shsize), 'section header 0');
    phnum = u32(sh0 + (is64 ? 44 : 28)); // sh_info
  }

  const phsize = is64 ? 56 : 32;
  const phdrs: ProgramHeader[] = [];
  if (phnum > 0) {
    if (phentsize < phsize) fail(`e_phentsize ${phentsize} is smaller than a program header (${phsize})`);
    span(phoff, BigInt(phnum) * BigInt(phentsize), `program header table (${phnum} entries)`);
    for (let i = 0; i < phnum; i++) {
      const b = Number(phoff) + i * phentsize;
      phdrs.push(
        is64
          ? { type: u32(b), offset: word(b + 8), vaddr: word(b + 16), filesz: word(b + 32) }
          : { type: u32(b), offset: word(b + 4), vaddr: word(b + 8), filesz: word(b + 16) },
      );
    }
  }

  const info: ElfInfo = {
    class: is64 ? 64 : 32,
    endian: le ? 'little' : 'big',
    type,
    machine,
    flags,
    needed: [],
  };

  // The kernel honours the first PT_INTERP; ld.so the first PT_DYNAMIC.
  const interpPh = phdrs.find((p) => p.type === PT_INTERP);
  if (interpPh) {
    const at = span(interpPh.offset, interpPh.filesz, 'PT_INTERP');
    const bytes = data.subarray(at, at + Number(interpPh.filesz));
    const nul = bytes.indexOf(0);
    if (nul < 0) fail('PT_INTERP string is not NUL-terminated');
    if (nul === 0) fail('PT_INTERP string is empty');
    info.interp = bytes.subarray(0, nul).toString('utf8');
  }

  const dynPh = phdrs.find((p) => p.type === PT_DYNAMIC);
  if (!dynPh) return info;

  const dynAt = span(dynPh.offset, dynPh.filesz, 'PT_DYNAMIC');
  const entsize = is64 ? 16 : 8;
  const count = Math.floor(Number(dynPh.filesz) / entsize);
  const neededOffs: bigint[] = [];
  const rpathOffs: bigint[] = [];
  const runpathOffs: bigint[] = [];
  let sonameOff: bigint | undefined;
  let strtab: bigint | undefined;
  let strsz: bigint | undefined;
  for (let i = 0; i < count; i++) {
    const b = dynAt + i * entsize;
    const t = tag(b);
    if (t === DT_NULL) break;
    const v = word(b + (is64 ? 8 : 4));
    if (t === DT_NEEDED) neededOffs.push(v);
    else if (t === DT_SONAME) sonameOff ??= v;
    else if (t === DT_RPATH) rpathOffs.push(v);
    else if (t === DT_RUNPATH) runpathOffs.push(v);
    else if (t === DT_STRTAB) strtab ??= v;
    else if (t === DT_STRSZ) strsz ??= v;
  }

  const wantsStrings =
    neededOffs.length > 0 || rpathOffs.length > 0 || runpathOffs.length > 0 || sonameOff !== undefined;
  if (!wantsStrings) return info;
  if (strtab === undefined) fail('dynamic segment names strings but has no DT_STRTAB');

  // DT_STRTAB is a virtual address; the PT_LOAD segment containing it says where
  // those bytes sit in the file (gABI "Program Loading").
  const addr = strtab;
  const load = phdrs.find((p) => p.type === PT_LOAD && addr >= p.vaddr && addr < p.vaddr + p.filesz);
  if (!load) fail(`DT_STRTAB address 0x${addr.toString(16)} is in no PT_LOAD segment`);
  const strOff = load.offset + (addr - load.vaddr);
  const strLen = strsz ?? BigInt(data.length) - strOff;
  const strAt = span(strOff, strLen, 'dynamic string table');
  const strEnd = strAt + Number(strLen);

  const str = (off: bigint, what: string): string => {
    if (off >= strLen) fail(`${what} string offset ${off} is outside the string table (${strLen} bytes)`);
    const start = strAt + Number(off);
    const nul = data.subarray(start, strEnd).indexOf(0);
    if (nul < 0) fail(`${what} string at offset ${off} is not NUL-terminated`);
    return data.subarray(start, start + nul).toString('utf8');
  };

  info.needed = neededOffs.map((o) => str(o, 'DT_NEEDED'));
  if (sonameOff !== undefined) info.soname = str(sonameOff, 'DT_SONAME');
  // More than one entry is unusual but legal; ld.so would search them in order.
  if (rpathOffs.length > 0) info.rpath = rpathOffs.map((o) => str(o, 'DT_RPATH')).join(':');
  if (runpathOffs.length > 0) info.runpath = runpathOffs.map((o) => str(o, 'DT_RUNPATH')).join(':');
  return info;
}
