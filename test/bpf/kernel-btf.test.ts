/** Sections of an ELF64 object and the kernel's .BTF: a generated ELF, a real object, and damage. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { elfSection, kernelBtf } from '../../src/bpf/kernel-btf.js';
import { KjxError } from '../../src/util/errors.js';
import { programBtf } from '../fixtures/btf-fixtures.js';

/** An ELF64 LE file with the given sections (after a NULL section and .shstrtab). */
function elfWith(sections: { name: string; data: Buffer; nobits?: boolean }[]): Buffer {
  const names = ['', '.shstrtab', ...sections.map((s) => s.name)];
  const shstr = Buffer.from(`${names.join('\0')}\0`);
  const nameOff = (i: number) => names.slice(0, i).reduce((a, n) => a + n.length + 1, 0);
  const datas = [shstr, ...sections.map((s) => (s.nobits ? Buffer.alloc(0) : s.data))];
  let off = 64;
  const offsets = datas.map((d) => {
    const o = off;
    off += d.length;
    return o;
  });
  const shoff = off;
  const shnum = names.length;
  const out = Buffer.alloc(shoff + shnum * 64);
  out.writeUInt32BE(0x7f454c46, 0);
  out[4] = 2;
  out[5] = 1;
  out[6] = 1;
  out.writeBigUInt64LE(BigInt(shoff), 0x28);
  out.writeUInt16LE(64, 0x3a);
  out.writeUInt16LE(shnum, 0x3c);
  out.writeUInt16LE(1, 0x3e);
  datas.forEach((d, i) => {
    d.copy(out, offsets[i]);
  });
  for (let i = 1; i < shnum; i++) {
    const h = shoff + i * 64;
    const s = i === 1 ? undefined : sections[i - 2];
    out.writeUInt32LE(nameOff(i), h);
    out.writeUInt32LE(s?.nobits ? 8 : i === 1 ? 3 : 1, h + 4);
    out.writeBigUInt64LE(BigInt(offsets[i - 1]!), h + 0x18);
    out.writeBigUInt64LE(BigInt(s ? s.data.length : shstr.length), h + 0x20);
  }
  return out;
}

test('a named section is found; a missing one is undefined; NOBITS is empty', () => {
  const elf = elfWith([
    { name: '.text', data: Buffer.from('code') },
    { name: '.BTF', data: programBtf().btf },
    { name: '.bss', data: Buffer.alloc(16), nobits: true },
  ]);
  assert.deepEqual(elfSection(elf, '.text'), Buffer.from('code'));
  assert.equal(elfSection(elf, '.nope'), undefined);
  assert.equal(elfSection(elf, '.bss')?.length, 0);
  assert.deepEqual(kernelBtf(elf), programBtf().btf);
});

test('a kernel without BTF has none; a .BTF that is not BTF, or sections past the end, are errors', () => {
  assert.equal(kernelBtf(elfWith([{ name: '.text', data: Buffer.from('x') }])), undefined);
  assert.throws(
    () => kernelBtf(elfWith([{ name: '.BTF', data: Buffer.alloc(32, 1) }]), 'vmlinux-6.1'),
    (e: unknown) =>
      e instanceof KjxError && /vmlinux-6\.1: its \.BTF section has no BTF header/.test(e.message),
  );
  const cut = elfWith([{ name: '.BTF', data: programBtf().btf }]);
  assert.throws(() => elfSection(cut.subarray(0, cut.length - 10), '.BTF'), /lie outside the file/);
  assert.throws(
    () => elfSection(Buffer.from('not an elf file at all, not at all, no'), '.BTF'),
    /not an ELF file/,
  );
});

test("a real object's .BTF (clang) is what llvm-objcopy extracts", () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-elfsec-'));
  try {
    writeFileSync(join(dir, 'a.bpf.c'), 'struct s { int a; char b[3]; } v;\n');
    execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-c', 'a.bpf.c', '-o', 'a.o'], { cwd: dir });
    execFileSync('llvm-objcopy', ['--dump-section', '.BTF=btf.bin', 'a.o'], { cwd: dir });
    assert.deepEqual(elfSection(readFileSync(join(dir, 'a.o')), '.BTF'), readFileSync(join(dir, 'btf.bin')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
