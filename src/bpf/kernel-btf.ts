/**
 * The kernel's BTF, where `vmlinux.h` comes from: the `.BTF` section of the kernel's
 * ELF image (`vmlinux`, unpacked from the bzImage by rootfs/bzimage.ts). Kernels
 * built with CONFIG_DEBUG_INFO_BTF have it (Debian's do); it is what the guest sees
 * as /sys/kernel/btf/vmlinux and what `bpftool btf dump ... format c` turns into C.
 *
 * Section headers per the ELF gABI (Elf64_Shdr); only ELF64 little-endian, which is
 * what an x86-64 kernel is. Pure: bytes in, bytes out.
 */
import { KjxError } from '../util/errors.js';

/** The raw-BTF magic (`struct btf_header.magic`, include/uapi/linux/btf.h), little-endian. */
export const BTF_MAGIC = 0xeb9f;

function bad(name: string, what: string): never {
  throw new KjxError('ARTIFACT_INVALID', `${name}: ${what}`, {
    hint: 'the kernel image is truncated or not an x86-64 ELF kernel',
  });
}

/** The bytes of the section `want` of an ELF64 little-endian object, or undefined when it has none. */
export function elfSection(elf: Buffer, want: string, name = 'vmlinux'): Buffer | undefined {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) bad(name, 'not an ELF file');
  if (elf[4] !== 2 || elf[5] !== 1) bad(name, 'not a 64-bit little-endian ELF file');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  if (shnum === 0) return undefined;
  if (shentsize < 64 || shoff + shnum * shentsize > elf.length)
    bad(name, `section headers (${shnum} at ${shoff}) lie outside the file`);
  const header = (i: number) => {
    const at = shoff + i * shentsize;
    const offset = Number(elf.readBigUInt64LE(at + 0x18));
    const size = Number(elf.readBigUInt64LE(at + 0x20));
    return { nameOff: elf.readUInt32LE(at), type: elf.readUInt32LE(at + 4), offset, size };
  };
  if (shstrndx >= shnum) bad(name, `section name table index ${shstrndx} out of range`);
  const strtab = header(shstrndx);
  if (strtab.offset + strtab.size > elf.length) bad(name, 'section name table lies outside the file');
  for (let i = 1; i < shnum; i++) {
    const h = header(i);
    const at = strtab.offset + h.nameOff;
    if (h.nameOff >= strtab.size) continue;
    const end = elf.indexOf(0, at);
    if (end < 0 || end > strtab.offset + strtab.size) continue;
    if (elf.toString('latin1', at, end) !== want) continue;
    const SHT_NOBITS = 8;
    if (h.type === SHT_NOBITS) return Buffer.alloc(0);
    if (h.offset + h.size > elf.length) bad(name, `section ${want} lies outside the file`);
    return elf.subarray(h.offset, h.offset + h.size);
  }
  return undefined;
}

/**
 * The kernel's raw BTF (a `btf_header` and what follows), or undefined when the
 * kernel was built without CONFIG_DEBUG_INFO_BTF.
 */
export function kernelBtf(vmlinux: Buffer, name = 'vmlinux'): Buffer | undefined {
  const btf = elfSection(vmlinux, '.BTF', name);
  if (!btf || btf.length === 0) return undefined;
  if (btf.length < 24 || btf.readUInt16LE(0) !== BTF_MAGIC) bad(name, 'its .BTF section has no BTF header');
  return btf;
}
