import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import {
  bzImagePayload,
  bzImageRelease,
  hasPvhEntry,
  lz4LegacyDecompress,
  pvhVmlinux,
} from '../../src/rootfs/bzimage.js';
import { bzImage, elfWithNotes, lz4Legacy, PVH_NOTE } from '../fixtures/bzimage-fixtures.js';
import { kjxError } from '../helpers/kjx-error.js';
import { needsTool } from '../helpers/prereq.js';

describe('bzimage', () => {
  test('legacy LZ4 frames decode to the original bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant(new Uint8Array(300).fill(7))), {
          maxLength: 30,
        }),
        (chunks) => {
          // repetitive input, so matches (also overlapping ones) occur
          const data = Buffer.concat(chunks.flatMap((c) => [Buffer.from(c), Buffer.from(c)]));
          assert.deepEqual(lz4LegacyDecompress(lz4Legacy(data)), data);
        },
      ),
    );
  });

  test('a match offset before the start of the output is an error, not a read out of bounds', () => {
    // token: 1 literal, match of 4; offset 9 with only 1 byte written
    const block = Buffer.from([0x10, 0x41, 9, 0, 0x50, 1, 2, 3, 4, 5]);
    const frame = Buffer.concat([
      Buffer.from([0x02, 0x21, 0x4c, 0x18]),
      Buffer.from([block.length, 0, 0, 0]),
      block,
    ]);
    assert.throws(() => lz4LegacyDecompress(frame, 'k'), kjxError('ARTIFACT_INVALID', /offset/));
  });

  test('the payload is found through the setup header and its format named', () => {
    const gz = gzipSync(Buffer.from('hello'));
    const r = bzImagePayload(bzImage(gz));
    assert.equal(r.format, 'gzip');
    assert.deepEqual(r.payload, gz);
    assert.equal(bzImagePayload(bzImage(Buffer.from([0x42, 0x5a, 0x68, 1]))).format, 'bzip2');
  });

  test("the release is the first word of the header's kernel_version string", () => {
    const gz = gzipSync(Buffer.from('x'));
    assert.equal(bzImageRelease(bzImage(gz, 3, '6.1.192 (kjx@kjx) #1 SMP @1700000000')), '6.1.192');
    assert.equal(bzImageRelease(bzImage(gz, 3, '6.12.0-rc1-dirty+ #3')), '6.12.0-rc1-dirty+');
    // no pointer, no header, a string that is no release, one too long, one past the end: none
    assert.equal(bzImageRelease(bzImage(gz)), undefined);
    assert.equal(bzImageRelease(Buffer.alloc(4096)), undefined);
    assert.equal(bzImageRelease(bzImage(gz, 3, '../etc #1')), undefined);
    assert.equal(bzImageRelease(bzImage(gz, 3, 'a'.repeat(300))), undefined);
    const past = bzImage(gz, 3, '6.1.192');
    past.writeUInt16LE(past.length, 0x20e);
    assert.equal(bzImageRelease(past), undefined);
  });

  test('not a bzImage, or a payload past the end, is a clear error', () => {
    assert.throws(() => bzImagePayload(Buffer.alloc(4096), 'vmlinuz'), /vmlinuz: no bzImage setup header/);
    const img = bzImage(Buffer.from('abc'));
    img.writeUInt32LE(1 << 30, 0x24c);
    assert.throws(() => bzImagePayload(img, 'vmlinuz'), /runs past the end/);
  });

  test('the PVH note is recognized among other Xen notes, and only it', () => {
    assert.equal(
      hasPvhEntry(elfWithNotes([{ name: 'Xen', type: 6, desc: Buffer.from('linux') }, PVH_NOTE])),
      true,
    );
    assert.equal(hasPvhEntry(elfWithNotes([{ name: 'Xen', type: 6, desc: Buffer.from('linux') }])), false);
    assert.equal(hasPvhEntry(elfWithNotes([{ name: 'GNU', type: 18, desc: Buffer.alloc(4) }])), false);
    assert.equal(hasPvhEntry(Buffer.from('not an elf')), false);
  });

  test('pvhVmlinux unpacks gzip and lz4 payloads with a PVH entry, and says why not otherwise', async () => {
    const elf = elfWithNotes([PVH_NOTE]);
    for (const payload of [gzipSync(elf), lz4Legacy(elf)]) {
      const r = await pvhVmlinux(bzImage(payload));
      assert.ok(r.ok);
      assert.deepEqual(r.vmlinux, elf);
    }
    const noPvh = await pvhVmlinux(bzImage(gzipSync(elfWithNotes([]))));
    assert.deepEqual(noPvh, { ok: false, why: 'its vmlinux has no PVH entry point (CONFIG_PVH)' });
    const bz2 = await pvhVmlinux(bzImage(Buffer.from([0x42, 0x5a, 0x68, 0x39])));
    assert.equal(bz2.ok, false);
    assert.match(bz2.ok ? '' : bz2.why, /bzip2/);
  });

  test('pvhVmlinux unpacks xz and zstd payloads, which end with the size the kernel build appends', {
    skip: needsTool('xz') || needsTool('zstd'),
  }, async () => {
    const elf = elfWithNotes([PVH_NOTE]);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(elf.length);
    // as the kernel's xz_wrap.sh and `zstd -22` with size_append write them
    for (const [tool, args] of [
      ['xz', ['--check=crc32', '--x86', '--lzma2=,dict=1MiB', '-c']],
      ['zstd', ['-19', '-c', '-q']],
    ] as const) {
      const packed = execFileSync(tool, args, { input: elf });
      const r = await pvhVmlinux(bzImage(Buffer.concat([packed, size])));
      assert.ok(r.ok, `${tool}: ${r.ok ? '' : r.why}`);
      assert.deepEqual(r.vmlinux, elf, tool);
      assert.equal(r.format, tool === 'xz' ? 'xz' : 'zstd');
      // a payload cut short is refused by the decoder, not read as a shorter kernel
      const cut = Buffer.concat([packed.subarray(0, packed.length - 8), size]);
      await assert.rejects(
        pvhVmlinux(bzImage(cut), 'vmlinuz'),
        kjxError('ARTIFACT_INVALID', new RegExp(`^vmlinuz \\(${r.format} payload\\)`)),
      );
    }
  });
});

describe('bzimage: cut-short payloads', () => {
  test('an LZ4 frame cut inside a block is an error, not a shorter kernel', () => {
    const data = Buffer.alloc(5000, 'abcdefgh');
    const one = lz4Legacy(data); // magic, size, block, trailer
    const block = one.subarray(4, one.length - 4);
    const total = Buffer.alloc(4);
    total.writeUInt32LE(2 * data.length);
    const frame = Buffer.concat([one.subarray(0, 4), block, block, total]);
    assert.deepEqual(lz4LegacyDecompress(frame), Buffer.concat([data, data]));
    assert.throws(() => lz4LegacyDecompress(frame.subarray(0, frame.length - 10), 'k'), /k: truncated/);
  });

  test('a payload whose size trailer disagrees with what it unpacks to is refused', async () => {
    const elf = elfWithNotes([PVH_NOTE]);
    const frame = lz4Legacy(elf);
    frame.writeUInt32LE(elf.length + 1, frame.length - 4);
    await assert.rejects(
      pvhVmlinux(bzImage(frame), 'vmlinuz'),
      /vmlinuz: the lz4 payload unpacks to \d+ bytes, its trailer says/,
    );
  });
});
