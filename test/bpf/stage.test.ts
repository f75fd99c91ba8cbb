/**
 * The kernel's BTF for the programs stage: read once per kernel image and then from
 * the cache, a kernel without BTF as a clear error, and kernels whose payload kjx's
 * own xz reader cannot take.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cachedKernelBtf, vmlinuxOf } from '../../src/bpf/stage.js';
import { openCache } from '../../src/sources/cache.js';
import { isKjxError } from '../../src/util/errors.js';
import { programBtf } from '../fixtures/btf-fixtures.js';
import { bzImage } from '../fixtures/bzimage-fixtures.js';
import { elfWith } from '../fixtures/elf-sections.js';

const root = mkdtempSync(join(tmpdir(), 'kjx-stage-btf-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A bzImage whose payload is `xz ARGS` of `elf`, with the size the kernel build appends. */
function xzKernel(elf: Buffer, args: string[]): Buffer {
  const xz = execFileSync('xz', ['-c', ...args], { input: elf });
  const size = Buffer.alloc(4);
  size.writeUInt32LE(elf.length);
  return bzImage(Buffer.concat([xz, size]));
}

test('regression: a kernel compressed with xz and the x86 BCJ filter (Debian generic kernels) still yields its BTF', async () => {
  const elf = elfWith([{ name: '.BTF', data: programBtf().btf }]);
  const vmlinuz = xzKernel(elf, ['--format=xz', '--check=crc32', '--x86', '--lzma2']);
  const r = await vmlinuxOf(vmlinuz, 'vmlinuz-generic');
  assert.ok(r.ok);
  assert.deepEqual(r.elf, elf);
  const btf = await cachedKernelBtf(openCache(root), vmlinuz, '6.1.0-generic');
  assert.deepEqual(await btf.data(), programBtf().btf);
});

test('read once: the second time the BTF comes from the cache', async () => {
  const cache = openCache(mkdtempSync(join(root, 'c-')));
  const vmlinuz = xzKernel(elfWith([{ name: '.BTF', data: programBtf().btf }]), [
    '--format=xz',
    '--check=crc32',
  ]);
  const a = await cachedKernelBtf(cache, vmlinuz, 'k');
  // a damaged image would fail to unpack: the cache answers without unpacking
  const b = await cachedKernelBtf(cache, vmlinuz, 'k');
  assert.equal(a.sha, b.sha);
});

test('a kernel without BTF: BPF_COMPILE saying so, with what to use instead', async () => {
  const vmlinuz = xzKernel(elfWith([{ name: '.text', data: Buffer.from('code') }]), [
    '--format=xz',
    '--check=crc32',
  ]);
  for (let i = 0; i < 2; i++)
    await assert.rejects(
      cachedKernelBtf(openCache(root), vmlinuz, '6.1.0-nobtf'),
      (e) =>
        isKjxError(e) &&
        e.code === 'BPF_COMPILE' &&
        /the BTF of the image kernel 6\.1\.0-nobtf, and it has no BTF/.test(e.message) &&
        /CONFIG_DEBUG_INFO_BTF=y/.test(e.hint ?? ''),
    );
});

test('regression: a cached kernel BTF found damaged is unpacked from the kernel again, not an internal error', async () => {
  const cache = openCache(mkdtempSync(join(root, 'c-')));
  const vmlinuz = xzKernel(elfWith([{ name: '.BTF', data: programBtf().btf }]), [
    '--format=xz',
    '--x86',
    '--lzma2',
  ]);
  const { sha } = await cachedKernelBtf(cache, vmlinuz, 'k');
  const hit = await cachedKernelBtf(cache, vmlinuz, 'k');
  // the cache checks a blob against its name when it is read (and drops it)
  writeFileSync(join(cache.root, 'blobs', sha.slice(0, 2), sha), 'damaged');
  assert.deepEqual(await hit.data(), programBtf().btf);
  assert.deepEqual(await (await cachedKernelBtf(cache, vmlinuz, 'k')).data(), programBtf().btf);
});

test('an xz kernel payload that unpacks past the size its trailer states is refused, the output bounded by that size', async () => {
  const elf = elfWith([{ name: '.BTF', data: programBtf().btf }]);
  const xz = execFileSync('xz', ['-c', '--format=xz', '--x86', '--lzma2'], { input: elf });
  const size = Buffer.alloc(4);
  size.writeUInt32LE(64); // claims 64 bytes
  await assert.rejects(
    vmlinuxOf(bzImage(Buffer.concat([xz, size])), 'vmlinuz-lying'),
    (e) =>
      isKjxError(e) &&
      e.code === 'ARTIFACT_INVALID' &&
      e.reason === 'over-budget' &&
      /vmlinuz-lying \(xz payload\)/.test(e.message),
  );
});
