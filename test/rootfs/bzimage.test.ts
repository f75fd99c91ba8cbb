import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { bzImagePayload, hasPvhEntry, lz4LegacyDecompress, pvhVmlinux } from '../../src/rootfs/bzimage.js';
import { KjxError } from '../../src/util/errors.js';

/**
 * A small LZ4 block encoder for fixtures: greedy, 4-byte hash of the last
 * position, matches of at least 4 bytes, the last 5 bytes always literals (the
 * format's end-of-block rules).
 */
function lz4Block(data: Buffer): Buffer {
  const out: number[] = [];
  const seen = new Map<number, number>();
  const len = (n: number) => {
    while (n >= 255) {
      out.push(255);
      n -= 255;
    }
    out.push(n);
  };
  let anchor = 0;
  let i = 0;
  const end = data.length - 5;
  while (i < end - 4) {
    const key = data.readUInt32LE(i);
    const cand = seen.get(key);
    seen.set(key, i);
    if (cand === undefined || i - cand > 65535) {
      i++;
      continue;
    }
    let m = 4;
    while (i + m < end && data[cand + m] === data[i + m]) m++;
    const lit = i - anchor;
    out.push((Math.min(lit, 15) << 4) | Math.min(m - 4, 15));
    if (lit >= 15) len(lit - 15);
    for (let k = anchor; k < i; k++) out.push(data[k]!);
    out.push((i - cand) & 255, (i - cand) >> 8);
    if (m - 4 >= 15) len(m - 4 - 15);
    i += m;
    anchor = i;
  }
  const lit = data.length - anchor;
  out.push(Math.min(lit, 15) << 4);
  if (lit >= 15) len(lit - 15);
  for (let k = anchor; k < data.length; k++) out.push(data[k]!);
  return Buffer.from(out);
}

/** The legacy frame the kernel's build writes: magic, blocks of ≤ 8 MiB, then the size. */
function lz4Legacy(data: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from([0x02, 0x21, 0x4c, 0x18])];
  for (let o = 0; o < data.length || o === 0; o += 8 << 20) {
    const block = lz4Block(data.subarray(o, o + (8 << 20)));
    const size = Buffer.alloc(4);
    size.writeUInt32LE(block.length);
    parts.push(size, block);
    if (data.length === 0) break;
  }
  const total = Buffer.alloc(4);
  total.writeUInt32LE(data.length);
  return Buffer.concat([...parts, total]);
}

/** A minimal ELF64 with one PT_NOTE holding the given notes. */
function elfWithNotes(notes: { name: string; type: number; desc: Buffer }[]): Buffer {
  const body = Buffer.concat(
    notes.map((n) => {
      const name = Buffer.from(`${n.name}\0`);
      const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
      const h = Buffer.alloc(12);
      h.writeUInt32LE(name.length, 0);
      h.writeUInt32LE(n.desc.length, 4);
      h.writeUInt32LE(n.type, 8);
      return Buffer.concat([h, pad(name), pad(n.desc)]);
    }),
  );
  const eh = Buffer.alloc(64);
  eh.write('\x7fELF', 0, 'latin1');
  eh[4] = 2;
  eh[5] = 1;
  eh[6] = 1;
  eh.writeUInt16LE(2, 16);
  eh.writeUInt16LE(62, 18);
  eh.writeBigUInt64LE(64n, 32); // e_phoff
  eh.writeUInt16LE(56, 54);
  eh.writeUInt16LE(1, 56);
  const ph = Buffer.alloc(56);
  ph.writeUInt32LE(4, 0); // PT_NOTE
  ph.writeBigUInt64LE(120n, 8);
  ph.writeBigUInt64LE(BigInt(body.length), 32);
  return Buffer.concat([eh, ph, body]);
}

const PVH_NOTE = { name: 'Xen', type: 18, desc: Buffer.from([0, 0, 0, 1]) };

/** A bzImage around `payload`: setup header fields at their boot-protocol offsets. */
function bzImage(payload: Buffer, setupSects = 3): Buffer {
  const setup = Buffer.alloc((setupSects + 1) * 512);
  setup[0x1f1] = setupSects;
  setup.write('HdrS', 0x202, 'latin1');
  setup.writeUInt16LE(0x20f, 0x206);
  setup.writeUInt32LE(16, 0x248); // payload offset inside the protected-mode part
  setup.writeUInt32LE(payload.length, 0x24c);
  return Buffer.concat([setup, Buffer.alloc(16), payload, Buffer.alloc(64)]);
}

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
    assert.throws(
      () => lz4LegacyDecompress(frame, 'k'),
      (e: unknown) => e instanceof KjxError && /offset/.test(e.message),
    );
  });

  test('the payload is found through the setup header and its format named', () => {
    const gz = gzipSync(Buffer.from('hello'));
    const r = bzImagePayload(bzImage(gz));
    assert.equal(r.format, 'gzip');
    assert.deepEqual(r.payload, gz);
    assert.equal(bzImagePayload(bzImage(Buffer.from([0x42, 0x5a, 0x68, 1]))).format, 'bzip2');
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
