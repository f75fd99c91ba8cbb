/**
 * GUID Partition Table (UEFI 2.10, section 5.3) with its protective MBR
 * (section 5.2.3), for 512-byte sectors: writing the table of a kjx disk image
 * and reading the table of any disk image `kjx inspect` is given.
 *
 * Layout: LBA 0 protective MBR (boot code may fill its first 440 bytes), LBA 1
 * the primary header, LBA 2..33 the entry array (128 entries of 128 bytes), the
 * partitions, then the backup array and the backup header in the last 33 sectors.
 * Both headers carry a CRC32 of themselves and of the entry array. GUIDs are
 * stored "mixed endian": the first three fields little endian, the rest as is.
 *
 * Pure format code: layouts in, bytes out; a ByteSource in, a layout out. A
 * damaged table is an ARTIFACT_INVALID error that says what is wrong with it.
 */
import { KjxError } from '../util/errors.js';
import type { ByteSource } from './byte-source.js';

export const SECTOR = 512;
const ENTRIES = 128;
const ENTRY_SIZE = 128;
const ENTRY_SECTORS = (ENTRIES * ENTRY_SIZE) / SECTOR; // 32
const HEADER_SIZE = 92;
const SIGNATURE = 'EFI PART';

/** Partition type GUIDs kjx uses (and recognizes by name when reading). */
export const PART_TYPES = {
  biosBoot: '21686148-6449-6e6f-744e-656564454649',
  esp: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
  /** "Root partition (x86-64)" of the Discoverable Partitions Specification. */
  rootX86_64: '4f68bce3-e8cd-4db1-96e7-fbcaf984b709',
  linuxData: '0fc63daf-8483-4772-8e79-3d69d8477de4',
} as const;

const TYPE_NAMES: Record<string, string> = {
  [PART_TYPES.biosBoot]: 'BIOS boot',
  [PART_TYPES.esp]: 'EFI system',
  [PART_TYPES.rootX86_64]: 'Linux root (x86-64)',
  [PART_TYPES.linuxData]: 'Linux filesystem',
};

export function partitionTypeName(type: string): string {
  return TYPE_NAMES[type] ?? type;
}

export interface GptPartition {
  /** Type GUID, lowercase. */
  type: string;
  /** Unique partition GUID, lowercase. */
  guid: string;
  firstLba: number;
  /** Inclusive. */
  lastLba: number;
  /** Attribute bits (bit 2: legacy BIOS bootable). */
  attributes: bigint;
  /** Up to 36 UTF-16 code units. */
  name: string;
}

export interface GptLayout {
  diskGuid: string;
  /** Size of the disk in sectors. */
  sectors: number;
  partitions: GptPartition[];
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, reflected, as zlib and UEFI compute it). */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A GUID string as the 16 bytes GPT stores. */
export function guidToBytes(guid: string): Buffer {
  const g = guid.toLowerCase();
  if (!GUID_RE.test(g)) throw new KjxError('INTERNAL', `"${guid}" is not a GUID`);
  const hex = g.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  // first three fields little endian
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

export function guidFromBytes(bytes: Buffer): string {
  const b = Buffer.from(bytes.subarray(0, 16));
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** First and last sectors partitions may use on a disk of `sectors`. */
export function usableRange(sectors: number): { first: number; last: number } {
  return { first: 2 + ENTRY_SECTORS, last: sectors - 2 - ENTRY_SECTORS };
}

function entryArray(parts: GptPartition[]): Buffer {
  const arr = Buffer.alloc(ENTRIES * ENTRY_SIZE);
  parts.forEach((p, i) => {
    const e = arr.subarray(i * ENTRY_SIZE, (i + 1) * ENTRY_SIZE);
    guidToBytes(p.type).copy(e, 0);
    guidToBytes(p.guid).copy(e, 16);
    e.writeBigUInt64LE(BigInt(p.firstLba), 32);
    e.writeBigUInt64LE(BigInt(p.lastLba), 40);
    e.writeBigUInt64LE(p.attributes, 48);
    const name = Buffer.from(p.name, 'utf16le');
    if (name.length > 72) throw new KjxError('INTERNAL', `partition name "${p.name}" is over 36 characters`);
    name.copy(e, 56);
  });
  return arr;
}

function header(layout: GptLayout, arrCrc: number, backup: boolean): Buffer {
  const last = layout.sectors - 1;
  const h = Buffer.alloc(SECTOR);
  h.write(SIGNATURE, 0, 'latin1');
  h.writeUInt32LE(0x00010000, 8); // revision 1.0
  h.writeUInt32LE(HEADER_SIZE, 12);
  h.writeBigUInt64LE(BigInt(backup ? last : 1), 24); // MyLBA
  h.writeBigUInt64LE(BigInt(backup ? 1 : last), 32); // AlternateLBA
  const usable = usableRange(layout.sectors);
  h.writeBigUInt64LE(BigInt(usable.first), 40);
  h.writeBigUInt64LE(BigInt(usable.last), 48);
  guidToBytes(layout.diskGuid).copy(h, 56);
  h.writeBigUInt64LE(BigInt(backup ? last - ENTRY_SECTORS : 2), 72); // PartitionEntryLBA
  h.writeUInt32LE(ENTRIES, 80);
  h.writeUInt32LE(ENTRY_SIZE, 84);
  h.writeUInt32LE(arrCrc, 88);
  h.writeUInt32LE(crc32(h.subarray(0, HEADER_SIZE)), 16);
  return h;
}

/** Check a layout before writing it: partitions inside the usable range, in order, not overlapping. */
function checkLayout(layout: GptLayout): void {
  const usable = usableRange(layout.sectors);
  if (layout.partitions.length > ENTRIES) throw new KjxError('INTERNAL', 'more than 128 partitions');
  let prevLast = usable.first - 1;
  for (const p of layout.partitions) {
    if (p.firstLba <= prevLast || p.lastLba < p.firstLba || p.lastLba > usable.last) {
      throw new KjxError(
        'INTERNAL',
        `partition "${p.name}" (${p.firstLba}..${p.lastLba}) is outside ${usable.first}..${usable.last} or overlaps the previous one`,
      );
    }
    prevLast = p.lastLba;
  }
}

/**
 * The sectors of a GPT: `head` goes at offset 0 (protective MBR, header, entries;
 * 34 sectors), `tail` at `(sectors - 33) * 512` (backup entries and header).
 * `bootCode` (at most 440 bytes, e.g. GRUB's boot.img) fills the start of the MBR.
 */
export function writeGpt(layout: GptLayout, bootCode?: Buffer): { head: Buffer; tail: Buffer } {
  checkLayout(layout);
  const arr = entryArray(layout.partitions);
  const arrCrc = crc32(arr);
  const mbr = Buffer.alloc(SECTOR);
  if (bootCode) {
    if (bootCode.length > 440) throw new KjxError('INTERNAL', 'MBR boot code is over 440 bytes');
    bootCode.copy(mbr, 0);
  }
  // One partition of type 0xEE covering the disk (UEFI 2.10, table 5.4).
  const pe = mbr.subarray(446, 462);
  pe[0] = 0x00; // not bootable: UEFI requires 0 here
  pe[1] = 0x00;
  pe[2] = 0x02;
  pe[3] = 0x00; // CHS 0/0/2
  pe[4] = 0xee;
  pe[5] = 0xff;
  pe[6] = 0xff;
  pe[7] = 0xff;
  pe.writeUInt32LE(1, 8);
  pe.writeUInt32LE(Math.min(layout.sectors - 1, 0xffffffff), 12);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const head = Buffer.concat([mbr, header(layout, arrCrc, false), arr]);
  const tail = Buffer.concat([arr, header(layout, arrCrc, true)]);
  return { head, tail };
}

function bad(name: string, what: string): KjxError {
  return new KjxError('ARTIFACT_INVALID', `${name}: ${what}`, {
    hint: 'the partition table is damaged; build the disk image again (or repair it with `sgdisk`/`fdisk`)',
  });
}

function readHeaderAt(
  src: ByteSource,
  lba: number,
): { layout: GptLayout; problem?: never } | { problem: string } {
  if ((lba + 1) * SECTOR > src.size)
    return { problem: `GPT header at LBA ${lba} is past the end of the file` };
  const h = src.read(lba * SECTOR, SECTOR);
  if (h.toString('latin1', 0, 8) !== SIGNATURE) return { problem: `no GPT signature at LBA ${lba}` };
  const size = h.readUInt32LE(12);
  if (size < HEADER_SIZE || size > SECTOR) return { problem: `GPT header at LBA ${lba} has size ${size}` };
  const copy = Buffer.from(h.subarray(0, size));
  const want = copy.readUInt32LE(16);
  copy.writeUInt32LE(0, 16);
  if (crc32(copy) !== want) return { problem: `GPT header at LBA ${lba} fails its CRC32 check` };
  const entriesLba = Number(h.readBigUInt64LE(72));
  const count = h.readUInt32LE(80);
  const esize = h.readUInt32LE(84);
  // UEFI: 128 << n bytes per entry, 128 of them in practice; anything far past that is a lure to read gigabytes
  if (esize < 128 || esize % 8 !== 0 || esize > 4096 || count > 4096)
    return { problem: `GPT header at LBA ${lba} has ${count} entries of ${esize} bytes` };
  const arrBytes = count * esize;
  if (entriesLba * SECTOR + arrBytes > src.size)
    return { problem: `GPT entry array at LBA ${entriesLba} runs past the end of the file` };
  const arr = src.read(entriesLba * SECTOR, arrBytes);
  if (crc32(arr) !== h.readUInt32LE(88))
    return { problem: `GPT entry array at LBA ${entriesLba} fails its CRC32 check` };
  const partitions: GptPartition[] = [];
  for (let i = 0; i < count; i++) {
    const e = arr.subarray(i * esize, i * esize + esize);
    if (e.subarray(0, 16).every((b) => b === 0)) continue;
    let end = 56;
    while (end + 1 < 128 && (e[end] !== 0 || e[end + 1] !== 0)) end += 2;
    partitions.push({
      type: guidFromBytes(e.subarray(0, 16)),
      guid: guidFromBytes(e.subarray(16, 32)),
      firstLba: Number(e.readBigUInt64LE(32)),
      lastLba: Number(e.readBigUInt64LE(40)),
      attributes: e.readBigUInt64LE(48),
      name: e.toString('utf16le', 56, end),
    });
  }
  return {
    layout: {
      diskGuid: guidFromBytes(h.subarray(56, 72)),
      sectors: Math.floor(src.size / SECTOR),
      partitions,
    },
  };
}

/** Does the source start like a disk with a partition table (MBR signature 55 AA)? */
export function hasMbrSignature(src: ByteSource): boolean {
  if (src.size < SECTOR) return false;
  const mbr = src.read(0, SECTOR);
  return mbr[510] === 0x55 && mbr[511] === 0xaa;
}

/**
 * Read the partition table of a disk image: GPT (primary header, else the
 * backup in the last sector), or a plain MBR table, whose partitions come back in
 * the same shape (type "mbr:0x83", no GUIDs). Each partition must lie inside the
 * file. Throws ARTIFACT_INVALID naming the problem when neither table is sound.
 */
export function readPartitionTable(src: ByteSource): GptLayout & { kind: 'gpt' | 'mbr' } {
  if (!hasMbrSignature(src)) throw bad(src.name, 'no partition table (no 55 AA signature in sector 0)');
  const mbr = src.read(0, SECTOR);
  const mbrParts = [0, 1, 2, 3].map((i) => {
    const pe = mbr.subarray(446 + i * 16, 462 + i * 16);
    return { type: pe[4]!, start: pe.readUInt32LE(8), count: pe.readUInt32LE(12), boot: pe[0]! };
  });
  const protective = mbrParts.some((p) => p.type === 0xee);
  let layout: GptLayout | undefined;
  let kind: 'gpt' | 'mbr' = 'gpt';
  if (protective) {
    const primary = readHeaderAt(src, 1);
    if ('layout' in primary && primary.layout) layout = primary.layout;
    else {
      const last = Math.floor(src.size / SECTOR) - 1;
      const backup = last > 1 ? readHeaderAt(src, last) : { problem: 'no room for a backup header' };
      if ('layout' in backup && backup.layout) layout = backup.layout;
      else
        throw bad(
          src.name,
          `corrupt GPT: ${primary.problem}; backup: ${(backup as { problem: string }).problem}`,
        );
    }
  } else {
    kind = 'mbr';
    const used = mbrParts.filter((p) => p.type !== 0 && p.count > 0);
    if (used.length === 0) throw bad(src.name, 'the MBR partition table is empty');
    for (const p of mbrParts) {
      if (p.boot !== 0 && p.boot !== 0x80) throw bad(src.name, 'the MBR partition table has invalid entries');
    }
    layout = {
      diskGuid: '',
      sectors: Math.floor(src.size / SECTOR),
      partitions: used.map((p, i) => ({
        type: `mbr:0x${p.type.toString(16).padStart(2, '0')}`,
        guid: '',
        firstLba: p.start,
        lastLba: p.start + p.count - 1,
        attributes: 0n,
        name: `partition ${i + 1}`,
      })),
    };
  }
  for (const p of layout.partitions) {
    if (p.lastLba < p.firstLba || (p.lastLba + 1) * SECTOR > src.size) {
      throw bad(
        src.name,
        `partition "${p.name}" spans sectors ${p.firstLba}..${p.lastLba}, beyond the end of the ${src.size}-byte file: the image is truncated or the table is corrupt`,
      );
    }
  }
  return { ...layout, kind };
}
