/**
 * `/usr/lib/kjx/reseed`: a 267-byte static x86-64 ELF that asks the kernel to reseed
 * its random generator now, `ioctl(open("/dev/urandom"), RNDRESEEDCRNG)` (random(4);
 * drivers/char/random.c). A guest restored from a snapshot holds the saving boot's
 * generator state, so without a reseed two restored runs print the same
 * /proc/sys/kernel/random/uuid. Writing to /dev/urandom only mixes into the input pool
 * (the next reseed is up to a minute away), and the vmgenid driver that reseeds on a
 * VM fork is not in Debian's cloud kernel (CONFIG_VIRT_DRIVERS is off), so the run
 * hook mixes the host's seed in and then calls this. Busybox has no ioctl applet and
 * no compiler is needed: the machine code is spelled out below.
 *
 * ELF64 layout (System V ABI, x86-64 supplement): the file header, one PT_LOAD
 * program header mapping the whole file read+execute at LOAD_ADDR, then the code.
 */

const LOAD_ADDR = 0x400000n;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const CODE_OFFSET = EHDR_SIZE + PHDR_SIZE;

/** `_IO('R', 0x07)` from include/uapi/linux/random.h. */
export const RNDRESEEDCRNG = 0x5207;

/** Added to clock_settime's errno in the exit status, so it is told apart from the reseed's. */
export const CLOCK_FAILED = 0x80;

/**
 * The program, `reseed [EPOCH]`: the reseed, then, when argv[1] starts with decimal
 * digits (at most 12 are read), `clock_settime(CLOCK_REALTIME, {EPOCH, 0})`: the run
 * hook sets the restored guest's wall clock here rather than with `date -s`, an exec
 * fewer (70-80 ms under TCG). Exit status 0 when both worked (or no EPOCH was given);
 * the reseed's errno when it failed (EPERM without CAP_SYS_ADMIN, ENODATA before the
 * generator is ready), before any clock is set; 1 when the device does not open;
 * CLOCK_FAILED + errno when only the clock was refused (EINVAL past the kernel's last
 * settable second). Offsets in the comments are bytes from the code's start; the bytes
 * are what GNU as makes of the instructions in the comments.
 */
function code(): Buffer {
  const path = Buffer.from('/dev/urandom\0');
  const ioctl = Buffer.alloc(4);
  ioctl.writeUInt32LE(RNDRESEEDCRNG);
  const c = Buffer.from([
    ...[0xb8, 0x02, 0x00, 0x00, 0x00], //   0 mov eax, 2 (open)
    ...[0x48, 0x8d, 0x3d, 0x7a, 0x00, 0x00, 0x00], //   5 lea rdi, [rip+0x7a] (the path at 134)
    ...[0xbe, 0x01, 0x00, 0x00, 0x00], //  12 mov esi, 1 (O_WRONLY)
    ...[0x31, 0xd2], //  17 xor edx, edx
    ...[0x0f, 0x05], //  19 syscall
    ...[0x85, 0xc0], //  21 test eax, eax
    ...[0x78, 0x61], //  23 js 122 (open failed)
    ...[0x89, 0xc7], //  25 mov edi, eax (the fd)
    ...[0xb8, 0x10, 0x00, 0x00, 0x00], //  27 mov eax, 16 (ioctl)
    ...[0xbe, ...ioctl], //  32 mov esi, RNDRESEEDCRNG
    ...[0x31, 0xd2], //  37 xor edx, edx
    ...[0x0f, 0x05], //  39 syscall
    ...[0xf7, 0xd8], //  41 neg eax (0, or the errno; rax's upper half is clear)
    ...[0x75, 0x44], //  43 jnz 113 (exit with it)
    ...[0x48, 0x83, 0x3c, 0x24, 0x02], //  45 cmp qword [rsp], 2 (argc)
    ...[0x72, 0x3d], //  50 jb 113 (no EPOCH: exit 0)
    ...[0x48, 0x8b, 0x74, 0x24, 0x10], //  52 mov rsi, [rsp+16] (argv[1])
    ...[0x31, 0xc9], //  57 xor ecx, ecx (digits read)
    ...[0x0f, 0xb6, 0x14, 0x0e], //  59 movzx edx, byte [rsi+rcx]
    ...[0x83, 0xea, 0x30], //  63 sub edx, '0'
    ...[0x83, 0xfa, 0x09], //  66 cmp edx, 9
    ...[0x77, 0x0e], //  69 ja 85 (not a digit: the number ends)
    ...[0x48, 0x6b, 0xc0, 0x0a], //  71 imul rax, rax, 10
    ...[0x48, 0x01, 0xd0], //  75 add rax, rdx
    ...[0xff, 0xc1], //  78 inc ecx
    ...[0x83, 0xf9, 0x0c], //  80 cmp ecx, 12 (no overflow: 12 digits fit)
    ...[0x72, 0xe6], //  83 jb 59
    ...[0x85, 0xc9], //  85 test ecx, ecx
    ...[0x74, 0x18], //  87 jz 113 (no digits: no clock, exit 0)
    ...[0x6a, 0x00], //  89 push 0 (tv_nsec)
    ...[0x50], //  91 push rax (tv_sec)
    ...[0xb8, 0xe3, 0x00, 0x00, 0x00], //  92 mov eax, 227 (clock_settime)
    ...[0x31, 0xff], //  97 xor edi, edi (CLOCK_REALTIME)
    ...[0x48, 0x89, 0xe6], //  99 mov rsi, rsp (the timespec)
    ...[0x0f, 0x05], // 102 syscall
    ...[0xf7, 0xd8], // 104 neg eax
    ...[0x74, 0x05], // 106 jz 113
    ...[0x05, CLOCK_FAILED, 0x00, 0x00, 0x00], // 108 add eax, CLOCK_FAILED
    ...[0x89, 0xc7], // 113 mov edi, eax
    ...[0xb8, 0x3c, 0x00, 0x00, 0x00], // 115 mov eax, 60 (exit)
    ...[0x0f, 0x05], // 120 syscall
    ...[0xbf, 0x01, 0x00, 0x00, 0x00], // 122 mov edi, 1
    ...[0xb8, 0x3c, 0x00, 0x00, 0x00], // 127 mov eax, 60 (exit)
    ...[0x0f, 0x05], // 132 syscall
  ]);
  return Buffer.concat([c, path]);
}

/** The whole ELF file. */
export function reseedElf(): Buffer {
  const body = code();
  const size = BigInt(CODE_OFFSET + body.length);
  const h = Buffer.alloc(CODE_OFFSET);
  // e_ident: magic, ELFCLASS64, little endian, version 1, System V ABI
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(h, 0);
  h.writeUInt16LE(2, 16); // e_type ET_EXEC
  h.writeUInt16LE(0x3e, 18); // e_machine EM_X86_64
  h.writeUInt32LE(1, 20); // e_version
  h.writeBigUInt64LE(LOAD_ADDR + BigInt(CODE_OFFSET), 24); // e_entry
  h.writeBigUInt64LE(BigInt(EHDR_SIZE), 32); // e_phoff
  h.writeBigUInt64LE(0n, 40); // e_shoff: no sections
  h.writeUInt32LE(0, 48); // e_flags
  h.writeUInt16LE(EHDR_SIZE, 52); // e_ehsize
  h.writeUInt16LE(PHDR_SIZE, 54); // e_phentsize
  h.writeUInt16LE(1, 56); // e_phnum
  h.writeUInt16LE(64, 58); // e_shentsize
  h.writeUInt16LE(0, 60); // e_shnum
  h.writeUInt16LE(0, 62); // e_shstrndx
  const ph = EHDR_SIZE;
  h.writeUInt32LE(1, ph); // p_type PT_LOAD
  h.writeUInt32LE(5, ph + 4); // p_flags R+X
  h.writeBigUInt64LE(0n, ph + 8); // p_offset
  h.writeBigUInt64LE(LOAD_ADDR, ph + 16); // p_vaddr
  h.writeBigUInt64LE(LOAD_ADDR, ph + 24); // p_paddr
  h.writeBigUInt64LE(size, ph + 32); // p_filesz
  h.writeBigUInt64LE(size, ph + 40); // p_memsz
  h.writeBigUInt64LE(0x1000n, ph + 48); // p_align
  return Buffer.concat([h, body]);
}
