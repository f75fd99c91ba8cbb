import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { xz } from '@napi-rs/lzma';
import { execa } from 'execa';
import { type Compression, compress, decompressAny, detectCompression } from '../../src/image/compress.js';
import { readCpio, writeCpio } from '../../src/image/cpio.js';
import { ensureParents, mk, newTree } from '../../src/rootfs/tree.js';
import { KjxError } from '../../src/util/errors.js';
import { needsTool } from '../helpers/prereq.js';

const NO_XZ = needsTool('xz');
const NO_ZSTD = needsTool('zstd');
const HAS_XZ = NO_XZ === false;
const HAS_ZSTD = NO_ZSTD === false;

const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'kjx-compress-'));
  tmpDirs.push(d);
  return d;
}
after(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

/** A compressible initramfs: text-like files plus some random bytes. */
function sampleImage(): Buffer {
  const src = { kind: 'generated', by: 'test' } as const;
  const t = newTree();
  for (let i = 0; i < 50; i++) t.set(`/etc/f${i}`, mk.file(`/etc/f${i}`, `line ${i}\n`.repeat(200), src));
  t.set('/bin/blob', mk.file('/bin/blob', randomBytes(20_000), src, 0o755));
  t.set('/dev/console', mk.char('/dev/console', 5, 1, src));
  ensureParents(t, src);
  return writeCpio(t, { epoch: 1_700_000_000 });
}

describe('detectCompression', () => {
  it('recognizes magic bytes', () => {
    assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
    assert.equal(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0])), 'xz');
    assert.equal(detectCompression(Buffer.from('070701')), 'none');
    assert.equal(detectCompression(Buffer.alloc(0)), 'none');
    assert.equal(detectCompression(Buffer.from([0x1f])), 'none');
  });
});

describe('compress', () => {
  const image = sampleImage();

  it('none returns the input', async () => {
    assert.equal(await compress(image, 'none'), image);
  });

  it('gzip is deterministic: mtime 0, Unix OS byte, identical bytes twice', async () => {
    const a = await compress(image, 'gzip');
    const b = await compress(image, 'gzip');
    assert.ok(a.equals(b));
    assert.equal(detectCompression(a), 'gzip');
    assert.equal(a.readUInt32LE(4), 0, 'MTIME');
    assert.equal(a[3], 0, 'FLG: no name, no comment');
    assert.equal(a[9], 3, 'OS = Unix');
    assert.ok(a.length < image.length);
    assert.ok((await decompressAny(a)).equals(image));
    assert.equal(readCpio(await decompressAny(a), 'x').length > 50, true);
  });

  it('xz writes CRC32 check, decompresses with xz -t / xz -dc and in-process', {
    skip: NO_XZ,
  }, async () => {
    const a = await compress(image, 'xz');
    assert.equal(detectCompression(a), 'xz');
    // Stream header: 6 magic bytes, then stream flags 0x00 <check type>; 0x01 = CRC32.
    assert.equal(a[6], 0x00);
    assert.equal(a[7], 0x01, 'check type CRC32 (the kernel has no CRC64)');
    // The stream footer repeats the flags before its "YZ" magic.
    assert.equal(a[a.length - 3], 0x01);
    assert.equal(a.subarray(-2).toString('latin1'), 'YZ');
    const file = join(tmp(), 'initrd.xz');
    writeFileSync(file, a);
    await execa('xz', ['-t', file]);
    const listed = await execa('xz', ['--robot', '--list', file]);
    assert.match(listed.stdout, /^totals\t.*\tCRC32\t/m);
    const { stdout } = await execa('xz', ['-dc', file], { encoding: 'buffer' });
    assert.ok(Buffer.from(stdout).equals(image));
    assert.ok((await decompressAny(a)).equals(image));
    assert.ok((await compress(image, 'xz')).equals(a), 'deterministic');
  });

  it('zstd round-trips, also through the zstd tool', {
    skip: NO_ZSTD,
  }, async () => {
    const a = await compress(image, 'zstd');
    assert.equal(detectCompression(a), 'zstd');
    assert.ok((await decompressAny(a)).equals(image));
    const { stdout } = await execa('zstd', ['-dc', '-q'], { input: a, encoding: 'buffer' });
    assert.ok(Buffer.from(stdout).equals(image));
    assert.ok((await compress(image, 'zstd')).equals(a), 'deterministic');
  });

  it('compresses empty input in every format', async () => {
    const formats: Compression[] = ['gzip', 'none'];
    if (HAS_XZ) formats.push('xz');
    if (HAS_ZSTD) formats.push('zstd');
    for (const f of formats) {
      const out = await compress(Buffer.alloc(0), f);
      assert.equal((await decompressAny(out)).length, 0, f);
    }
  });

  it('a missing host tool is HOST_TOOL_MISSING with an apt-get hint', async () => {
    const saved = process.env.PATH;
    process.env.PATH = tmp(); // an empty directory: no xz, no zstd
    try {
      for (const [format, pkg] of [
        ['xz', 'xz-utils'],
        ['zstd', 'zstd'],
      ] as const) {
        await assert.rejects(
          compress(Buffer.from('x'), format),
          (e: unknown) =>
            e instanceof KjxError &&
            e.code === 'HOST_TOOL_MISSING' &&
            (e.hint ?? '').includes(`apt-get install ${pkg}`),
        );
      }
    } finally {
      process.env.PATH = saved;
    }
  });

  it('a failing host tool is SUBPROCESS naming the command and its stderr', async () => {
    const dir = tmp();
    const fake = join(dir, 'xz');
    writeFileSync(fake, '#!/bin/sh\necho "xz: out of cheese" >&2\nexit 3\n', { mode: 0o755 });
    const saved = process.env.PATH;
    process.env.PATH = `${dir}:${saved}`;
    try {
      await assert.rejects(compress(Buffer.from('x'), 'xz'), (e: unknown) => {
        assert.ok(e instanceof KjxError);
        assert.equal(e.code, 'SUBPROCESS');
        assert.match(e.message, /xz --check=crc32 -T1 -6/);
        assert.match(e.message, /exit code 3/);
        assert.match(e.message, /out of cheese/);
        return true;
      });
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe('decompressAny', () => {
  it('returns uncompressed data as it is', async () => {
    const d = Buffer.from('070701...');
    assert.equal(await decompressAny(d), d);
  });

  it('reads xz written by the in-process encoder too', async () => {
    const d = Buffer.from('hello '.repeat(1000));
    assert.ok((await decompressAny(await xz.compress(d))).equals(d));
  });

  it('corrupt or unsupported data is CPIO_INVALID naming the image', async () => {
    const gz = await compress(Buffer.from('hello '.repeat(1000)), 'gzip');
    const cases: [string, Buffer, RegExp][] = [
      ['truncated gzip', gz.subarray(0, gz.length - 10), /initrd.img: gzip data is corrupt/],
      ['zstd magic only', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]), /zstd data is corrupt/],
      ['xz magic only', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 9, 9]), /xz data is corrupt/],
      ['bzip2', Buffer.from('BZh91AY&SY'), /compressed with bzip2/],
    ];
    for (const [what, data, re] of cases) {
      await assert.rejects(
        decompressAny(data, 'initrd.img'),
        (e: unknown) => e instanceof KjxError && e.code === 'CPIO_INVALID' && re.test(e.message),
        what,
      );
    }
  });

  it('output past maxBytes is refused for every format; up to it passes', async () => {
    const big = Buffer.alloc(1 << 20, 'a');
    const formats: Compression[] = ['gzip', 'none'];
    if (HAS_ZSTD) formats.push('zstd');
    if (HAS_XZ) formats.push('xz');
    for (const f of formats) {
      const packed = await compress(big, f);
      await assert.rejects(
        decompressAny(packed, 'layer.tar', big.length - 1),
        {
          code: 'CPIO_INVALID',
          reason: 'over-budget',
          message:
            f === 'none'
              ? /^layer\.tar: holding 1048576 bytes would take more than the 1048575 bytes kjx allows/
              : /^layer\.tar: decompressing layer\.tar would take more than the 1048575 bytes kjx allows/,
        },
        f,
      );
      assert.ok((await decompressAny(packed, 'layer.tar', big.length)).equals(big), f);
    }
  });
});
