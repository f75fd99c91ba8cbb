/**
 * What a qcow2 or VMDK file may make qemu-img open besides itself, read from its
 * own header before qemu-img (or anything) opens it. `kjx inspect` and `kjx diff`
 * take images from elsewhere, and both formats can name other files: a qcow2
 * backing file ("nbd://host/x", "http://...", "/home/you/.ssh/id_ed25519") or
 * external data file, a VMDK extent (FLAT, VMFS, another sparse file) or parent.
 * qemu-img would open each, connecting to hosts or reading host files as the user.
 * kjx reads self-contained images only; the rest is refused by name.
 *
 * qcow2: QEMU's docs/interop/qcow2.txt (big-endian header: backing_file_offset at
 * 8, backing_file_size at 16, crypt_method at 32; version 3 adds
 * incompatible_features at 72 (bit 2: external data file) and header_length at
 * 100; header extensions follow, type 0x44415441 naming the data file).
 * VMDK: VMware's "Virtual Disk Format 1.1" (sparse extent header "KDMV":
 * capacity at 12, descriptorOffset and descriptorSize in sectors at 28 and 36;
 * the embedded descriptor lists createType, extents and parentFileNameHint).
 * QEMU treats a KDMV file whose capacity is 0 as a descriptor file, so its
 * extents are checked like those of a text descriptor.
 *
 * Pure: a ByteSource in, a problem in words (or undefined) out.
 */
import type { ByteSource } from './byte-source.js';

const QCOW2_MAGIC = 'QFI\xfb';
const INCOMPAT_DATA_FILE = 1n << 2n;
const EXT_END = 0;
const EXT_DATA_FILE = 0x44415441;
/** A header longer than this is no qcow2 qemu writes (its extensions fit in the first cluster). */
const MAX_HEADER_BYTES = 2 * 1024 * 1024;

const SECTOR = 512;
const MAX_DESCRIPTOR_BYTES = 1024 * 1024;
/** Extent types that keep the data in the file itself. */
const SELF_CONTAINED = new Set(['monolithicSparse', 'streamOptimized']);

/** A name from a hostile file, fit for a one-line message. */
function shown(name: string): string {
  const cut = name.length > 120 ? `${name.slice(0, 120)}…` : name;
  return JSON.stringify(cut);
}

/** Why a qcow2 file is not self-contained (or unreadable as one), or undefined. */
export function qcow2Problem(src: ByteSource): string | undefined {
  if (src.size < 72) return 'is too short for a qcow2 header';
  const h = src.read(0, Math.min(src.size, 104));
  if (h.toString('latin1', 0, 4) !== QCOW2_MAGIC) return 'has no qcow2 magic';
  const version = h.readUInt32BE(4);
  if (version !== 2 && version !== 3) return `is qcow2 version ${version}, which kjx does not read`;
  const backingOffset = h.readBigUInt64BE(8);
  const backingSize = h.readUInt32BE(16);
  if (backingOffset !== 0n) {
    const at = Number(backingOffset);
    const len = Math.min(backingSize, 1023);
    const name =
      Number.isSafeInteger(at) && at + len <= src.size
        ? src.read(at, len).toString('latin1')
        : '(unreadable)';
    return `is a qcow2 image with a backing file ${shown(name)}`;
  }
  if (h.readUInt32BE(32) !== 0) return 'is an encrypted qcow2 image';
  if (version === 2) return undefined;
  if (h.length < 104) return 'is too short for a qcow2 version 3 header';
  if (h.readBigUInt64BE(72) & INCOMPAT_DATA_FILE)
    return 'is a qcow2 image whose data live in an external data file';
  // header extensions: { type u32, length u32, data padded to 8 bytes }, type 0 ends them
  let off = h.readUInt32BE(100);
  for (let n = 0; n < 1024; n++) {
    if (off + 8 > src.size || off + 8 > MAX_HEADER_BYTES) return 'has a qcow2 header extension past its end';
    const ext = src.read(off, 8);
    const type = ext.readUInt32BE(0);
    const len = ext.readUInt32BE(4);
    if (type === EXT_END) return undefined;
    if (off + 8 + len > src.size) return 'has a qcow2 header extension past its end';
    if (type === EXT_DATA_FILE) {
      const name = src.read(off + 8, Math.min(len, 1023)).toString('latin1');
      return `is a qcow2 image whose data live in the external data file ${shown(name)}`;
    }
    off += 8 + Math.ceil(len / 8) * 8;
  }
  return 'has more qcow2 header extensions than any image qemu writes';
}

/** The lines of a VMDK descriptor that matter here. */
interface Descriptor {
  createType: string | undefined;
  extents: { type: string; file: string; line: string }[];
  parent: string | undefined;
}

function parseDescriptor(text: string): Descriptor {
  const d: Descriptor = { createType: undefined, extents: [], parent: undefined };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\0.*$/s, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const kv = /^([A-Za-z.]+)\s*=\s*"?([^"]*)"?$/.exec(line);
    if (kv) {
      if (kv[1] === 'createType') d.createType = kv[2];
      if (kv[1] === 'parentFileNameHint') d.parent = kv[2];
      continue;
    }
    // RW 4192256 SPARSE "disk.vmdk" [offset]; anything else that names an access mode is an extent too
    const ext = /^(RW|RDONLY|NOACCESS)\s+(\S+)\s+(\S+)\s*(?:"([^"]*)")?/.exec(line);
    if (ext) d.extents.push({ type: ext[3]!, file: ext[4] ?? '', line });
  }
  return d;
}

function descriptorProblem(d: Descriptor, embedded: boolean): string | undefined {
  const where = embedded ? 'its embedded descriptor' : 'the descriptor';
  if (d.parent !== undefined) return `is a VMDK image with a parent ${shown(d.parent)}`;
  const foreign = d.extents.find((e) => e.type !== 'SPARSE');
  if (foreign) return `is a VMDK image whose ${where} names a ${foreign.type} extent ${shown(foreign.file)}`;
  if (!embedded) {
    const first = d.extents[0];
    return `is a VMDK descriptor file: its data live in other files${first ? ` (${shown(first.file)})` : ''}`;
  }
  if (!d.createType || !SELF_CONTAINED.has(d.createType))
    return `is a VMDK image of type ${shown(d.createType ?? '(none)')} (kjx reads monolithicSparse and streamOptimized)`;
  if (d.extents.length !== 1) return `is a VMDK image whose ${where} lists ${d.extents.length} extents`;
  return undefined;
}

/** Why a VMDK file is not one self-contained sparse image, or undefined. */
export function vmdkProblem(src: ByteSource): string | undefined {
  const head = src.read(0, Math.min(src.size, 512));
  if (head.toString('latin1', 0, 4) !== 'KDMV') {
    const text = src.read(0, Math.min(src.size, MAX_DESCRIPTOR_BYTES)).toString('latin1');
    return descriptorProblem(parseDescriptor(text), false);
  }
  if (head.length < 44) return 'is too short for a VMDK sparse header';
  const capacity = head.readBigUInt64LE(12);
  const descOffset = head.readBigUInt64LE(28);
  const descSize = head.readBigUInt64LE(36);
  if (descOffset === 0n || descSize === 0n)
    return 'is a VMDK extent without a descriptor (part of a split image)';
  const at = Number(descOffset) * SECTOR;
  const len = Number(descSize) * SECTOR;
  if (len > MAX_DESCRIPTOR_BYTES || !Number.isSafeInteger(at) || at + len > src.size)
    return 'has a VMDK descriptor outside the file';
  const problem = descriptorProblem(parseDescriptor(src.read(at, len).toString('latin1')), true);
  if (problem) return problem;
  // qemu reads a KDMV file of capacity 0 as a descriptor file: its extents would be opened
  if (capacity === 0n) return 'is a VMDK image of capacity 0 (qemu would read it as a descriptor file)';
  return undefined;
}
