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
import { elfWith } from '../fixtures/elf-sections.js';

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
