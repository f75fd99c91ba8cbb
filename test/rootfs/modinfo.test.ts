import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { xz } from '@napi-rs/lzma';
import fc from 'fast-check';
import {
  modinfoSection,
  moduleCompression,
  parseDepends,
  parseModinfo,
  parseModinfoRecords,
  parseSoftdep,
} from '../../src/rootfs/modinfo.js';
import { decompressModule } from '../../src/rootfs/module-decompress.js';
import { buildKo } from '../fixtures/ko-fixtures.js';
import { assertKjxError } from '../helpers/kjx-error.js';

const VIRTIO_NET = {
  name: 'virtio_net',
  depends: ['virtio_ring', 'virtio', 'net_failover'],
  alias: ['virtio:d00000001v*', 'pci:v00001AF4d00001000sv*sd*bc*sc*i*'],
  softdep: ['pre: crc32c'],
  vermagic: '6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions ',
  license: 'GPL',
};

function isInvalid(path: string) {
  return (e: unknown) => {
    assertKjxError(e, 'MODULE_INVALID');
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    return true;
  };
}

describe('parseModinfo', () => {
  it('reads name, depends, aliases, softdep, vermagic and license', () => {
    const info = parseModinfo(buildKo(VIRTIO_NET), 'virtio_net.ko');
    assert.equal(info.name, 'virtio_net');
    assert.deepEqual(info.depends, ['virtio_ring', 'virtio', 'net_failover']);
    assert.deepEqual(info.alias, VIRTIO_NET.alias);
    assert.deepEqual(info.softdep, ['pre: crc32c']);
    assert.equal(info.vermagic, VIRTIO_NET.vermagic);
    assert.equal(info.license, 'GPL');
    assert.ok(info.records.some((r) => r.key === 'description' && r.value === 'kjx test module'));
  });

  it('reads an empty depends= as no dependencies and a missing name as undefined', () => {
    const info = parseModinfo(buildKo({ depends: [] }), 'x.ko');
    assert.deepEqual(info.depends, []);
    assert.equal(info.name, undefined);
    assert.deepEqual(info.alias, []);
  });

  it('keeps "=" inside values and skips alignment padding', () => {
    const raw = Buffer.from('\0\0license=GPL\0\0\0\0parm=debug:level=3 (int)\0depends=a,b\0\0');
    const info = parseModinfo(buildKo({ rawModinfo: raw }), 'x.ko');
    assert.deepEqual(info.depends, ['a', 'b']);
    assert.equal(info.records.find((r) => r.key === 'parm')?.value, 'debug:level=3 (int)');
  });

  it('refuses a module without .modinfo', () => {
    assert.throws(() => parseModinfo(buildKo({ sectionName: '.notinfo' }), 'm.ko'), /no \.modinfo section/);
  });

  it('refuses a record that is not key=value and a section cut inside a record', () => {
    assert.throws(
      () => parseModinfo(buildKo({ rawModinfo: Buffer.from('license=GPL\0garbage\0') }), 'm.ko'),
      isInvalid('m.ko'),
    );
    assert.throws(
      () => parseModinfo(buildKo({ rawModinfo: Buffer.from('license=GPL\0depends=a') }), 'm.ko'),
      /missing NUL/,
    );
  });

  it('refuses non-ELF, ELF32 and non-relocatable files', () => {
    const ko = buildKo(VIRTIO_NET);
    assert.throws(() => parseModinfo(Buffer.from('hello world, not an elf'), 'a.ko'), /not an ELF/);
    const elf32 = Buffer.from(ko);
    elf32[4] = 1;
    assert.throws(() => parseModinfo(elf32, 'b.ko'), /not ELF64/);
    const exec = Buffer.from(ko);
    exec.writeUInt16LE(2, 16);
    assert.throws(() => parseModinfo(exec, 'c.ko'), /not a relocatable object/);
  });

  it('refuses compressed modules, naming the compression', () => {
    const ko = buildKo(VIRTIO_NET);
    assert.throws(() => parseModinfo(xz.compressSync(ko), 'v.ko.xz'), /v\.ko\.xz: xz-compressed/);
    assert.throws(() => parseModinfo(gzipSync(ko), 'v.ko.gz'), /gzip-compressed/);
  });

  it('throws MODULE_INVALID for every truncation of a valid module', () => {
    const ko = buildKo(VIRTIO_NET);
    for (let n = 0; n < ko.length; n++)
      assert.throws(() => parseModinfo(ko.subarray(0, n), 'cut.ko'), isInvalid('cut.ko'));
  });

  it('property: corrupted modules either parse or throw MODULE_INVALID, never crash', () => {
    const ko = buildKo(VIRTIO_NET);
    const check = (data: Buffer) => {
      try {
        parseModinfo(data, 'fuzz.ko');
      } catch (e) {
        isInvalid('fuzz.ko')(e);
      }
    };
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(ko.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.nat(ko.length),
        (flips, cut) => {
          const bad = Buffer.from(ko);
          for (const [at, v] of flips) bad[at] = v;
          check(bad);
          check(bad.subarray(0, cut));
        },
      ),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => check(Buffer.from(bytes))),
      { numRuns: 500 },
    );
    // Random bytes behind a valid ELF64 ET_REL header reach the section-table code.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), (bytes) => {
        const b = Buffer.concat([ko.subarray(0, 64), Buffer.from(bytes)]);
        check(b);
      }),
      { numRuns: 500 },
    );
  });

  it('modinfoSection returns exactly the section bytes', () => {
    const raw = Buffer.from('license=GPL\0name=x\0');
    assert.deepEqual(modinfoSection(buildKo({ rawModinfo: raw }), 'x.ko'), raw);
  });
});

describe('record helpers', () => {
  it('parseModinfoRecords splits records and skips empty ones', () => {
    assert.deepEqual(parseModinfoRecords(Buffer.from('a=1\0\0b=\0'), 'p'), [
      { key: 'a', value: '1' },
      { key: 'b', value: '' },
    ]);
    assert.deepEqual(parseModinfoRecords(Buffer.alloc(0), 'p'), []);
  });

  it('parseDepends handles empty lists and stray commas', () => {
    assert.deepEqual(parseDepends(''), []);
    assert.deepEqual(parseDepends('a,,b,'), ['a', 'b']);
  });

  it('parseSoftdep splits pre: and post: lists', () => {
    assert.deepEqual(parseSoftdep('pre: crc32c'), { pre: ['crc32c'], post: [] });
    assert.deepEqual(parseSoftdep('pre: a  b post: c'), { pre: ['a', 'b'], post: ['c'] });
    assert.deepEqual(parseSoftdep('post: c pre: d'), { pre: ['d'], post: ['c'] });
    assert.deepEqual(parseSoftdep('stray pre: e'), { pre: ['e'], post: [] });
  });
});

describe('module compression', () => {
  const ko = buildKo(VIRTIO_NET);

  it('recognizes xz, zstd and gzip by magic', () => {
    assert.equal(moduleCompression(ko), undefined);
    assert.equal(moduleCompression(xz.compressSync(ko)), 'xz');
    assert.equal(moduleCompression(gzipSync(ko)), 'gzip');
    assert.equal(moduleCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
    assert.equal(moduleCompression(Buffer.from([0xfd, 0x37])), undefined);
  });

  it('decompresses xz, gzip and zstd back to the module, and passes plain modules through', () => {
    assert.deepEqual(decompressModule(xz.compressSync(ko), 'v.ko.xz'), ko);
    assert.deepEqual(decompressModule(gzipSync(ko), 'v.ko.gz'), ko);
    // The kernel compresses with the zstd CLI; fzstd has no compressor, so use the host tool here.
    const zst = execFileSync('zstd', ['-q', '-c', '-19'], { input: ko });
    assert.equal(moduleCompression(zst), 'zstd');
    assert.deepEqual(decompressModule(zst, 'v.ko.zst'), ko);
    assert.equal(decompressModule(ko, 'v.ko'), ko);
  });

  it('turns corrupt compressed data into MODULE_INVALID', () => {
    const bad = xz.compressSync(ko);
    bad.fill(0x41, 12, 40);
    assert.throws(() => decompressModule(bad, 'bad.ko.xz'), isInvalid('bad.ko.xz'));
    const badZst = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5, 6]);
    assert.throws(() => decompressModule(badZst, 'bad.ko.zst'), isInvalid('bad.ko.zst'));
    assert.throws(
      () => decompressModule(Buffer.from([0x1f, 0x8b, 8, 0, 1]), 'bad.ko.gz'),
      isInvalid('bad.ko.gz'),
    );
  });
});
