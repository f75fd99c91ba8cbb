import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { bufferSource } from '../../src/image/byte-source.js';
import {
  crc32,
  type GptLayout,
  guidFromBytes,
  guidToBytes,
  PART_TYPES,
  readPartitionTable,
  SECTOR,
  writeGpt,
} from '../../src/image/gpt.js';
import { kjxError } from '../helpers/kjx-error.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const SECTORS = 64 * 2048; // 64 MiB
function layout(): GptLayout {
  return {
    diskGuid: '01234567-89ab-4cde-8f01-23456789abcd',
    sectors: SECTORS,
    partitions: [
      {
        type: PART_TYPES.biosBoot,
        guid: '11111111-2222-4333-8444-555555555555',
        firstLba: 2048,
        lastLba: 4095,
        attributes: 0n,
        name: 'BIOS boot',
      },
      {
        type: PART_TYPES.esp,
        guid: '21111111-2222-4333-8444-555555555555',
        firstLba: 4096,
        lastLba: 20479,
        attributes: 0n,
        name: 'EFI system',
      },
      {
        type: PART_TYPES.rootX86_64,
        guid: '31111111-2222-4333-8444-555555555555',
        firstLba: 20480,
        lastLba: SECTORS - 40,
        attributes: 1n << 60n,
        name: 'kjx-root',
      },
    ],
  };
}

function disk(l: GptLayout, boot?: Buffer): Buffer {
  const img = Buffer.alloc(l.sectors * SECTOR);
  const { head, tail } = writeGpt(l, boot);
  head.copy(img, 0);
  tail.copy(img, img.length - tail.length);
  return img;
}

function flip(b: Buffer, at: number, bits: number): void {
  b.writeUInt8(b.readUInt8(at) ^ bits, at);
}

function expectInvalid(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, kjxError('ARTIFACT_INVALID', re));
}

describe('crc32 and GUIDs', () => {
  test('crc32 of "123456789" is the IEEE check value CBF43926', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });
  test('GUIDs are stored mixed-endian (the ESP type as UEFI lists its bytes)', () => {
    assert.equal(guidToBytes(PART_TYPES.esp).toString('hex'), '28732ac11ff8d211ba4b00a0c93ec93b');
    assert.equal(guidFromBytes(guidToBytes(PART_TYPES.rootX86_64)), PART_TYPES.rootX86_64);
  });
});

describe('writeGpt / readPartitionTable', () => {
  test('round trip: every partition field comes back', () => {
    const l = layout();
    const back = readPartitionTable(bufferSource(disk(l), 'disk.img'));
    assert.equal(back.kind, 'gpt');
    assert.equal(back.diskGuid, l.diskGuid);
    assert.deepEqual(back.partitions, l.partitions);
  });

  test('the protective MBR carries the boot code and one 0xEE partition', () => {
    const code = Buffer.alloc(440, 0xcc);
    const img = disk(layout(), code);
    assert.deepEqual(img.subarray(0, 440), code);
    assert.equal(img[446 + 4], 0xee);
    assert.equal(img.readUInt32LE(446 + 8), 1);
    assert.equal(img.readUInt32LE(446 + 12), SECTORS - 1);
    assert.equal(img.readUInt16LE(510), 0xaa55);
  });

  test('sfdisk reads the table we write and finds nothing wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-gpt-'));
    dirs.push(dir);
    const file = join(dir, 'disk.img');
    writeFileSync(file, disk(layout()));
    const verify = spawnSync('sfdisk', ['--verify', file], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr);
    assert.match(verify.stdout, /No errors detected/);
    const j = JSON.parse(spawnSync('sfdisk', ['--json', file], { encoding: 'utf8' }).stdout);
    const parts = j.partitiontable.partitions;
    assert.equal(j.partitiontable.label, 'gpt');
    assert.equal(j.partitiontable.id.toLowerCase(), layout().diskGuid);
    assert.deepEqual(
      parts.map((p: { start: number; size: number; type: string; name: string }) => [
        p.start,
        p.size,
        p.type.toLowerCase(),
        p.name,
      ]),
      layout().partitions.map((p) => [p.firstLba, p.lastLba - p.firstLba + 1, p.type, p.name]),
    );
  });

  test('a corrupt primary header falls back to the backup', () => {
    const img = disk(layout());
    flip(img, SECTOR + 40, 0xff); // inside the header: its CRC no longer matches
    const back = readPartitionTable(bufferSource(img, 'disk.img'));
    assert.equal(back.partitions.length, 3);
  });

  test('both headers corrupt: ARTIFACT_INVALID naming both problems', () => {
    const img = disk(layout());
    flip(img, SECTOR + 40, 0xff);
    flip(img, img.length - SECTOR + 40, 0xff);
    expectInvalid(
      () => readPartitionTable(bufferSource(img, 'disk.img')),
      /corrupt GPT: .*CRC32.*backup: .*CRC32/,
    );
  });

  test('a corrupt entry array is caught by its CRC', () => {
    const img = disk(layout());
    flip(img, 2 * SECTOR + 60, 0x01); // the first entry's name
    flip(img, img.length - 33 * SECTOR + 60, 0x01);
    expectInvalid(() => readPartitionTable(bufferSource(img, 'disk.img')), /entry array .* CRC32/);
  });

  test('a truncated image: the partitions run past the end', () => {
    const img = disk(layout());
    const cut = img.subarray(0, 10 * 1024 * 1024);
    expectInvalid(() => readPartitionTable(bufferSource(cut, 'disk.img')), /beyond the end .* truncated/);
  });

  test('no partition table at all', () => {
    expectInvalid(
      () => readPartitionTable(bufferSource(Buffer.alloc(4096), 'zeros.img')),
      /no partition table/,
    );
  });

  test('a plain MBR table is read in the same shape', () => {
    const img = Buffer.alloc(8 * 1024 * 1024);
    img[446 + 4] = 0x83;
    img.writeUInt32LE(2048, 446 + 8);
    img.writeUInt32LE(4096, 446 + 12);
    img.writeUInt16LE(0xaa55, 510);
    const t = readPartitionTable(bufferSource(img, 'mbr.img'));
    assert.equal(t.kind, 'mbr');
    assert.deepEqual(
      t.partitions.map((p) => [p.type, p.firstLba, p.lastLba]),
      [['mbr:0x83', 2048, 6143]],
    );
  });

  test('overlapping partitions are refused when writing', () => {
    const l = layout();
    l.partitions[1]!.firstLba = 4000;
    assert.throws(() => writeGpt(l), /overlaps/);
  });
});

describe('hostile partition tables', () => {
  test('an entry size of megabytes (4096 entries of 1 MiB = 4 GiB to read) is refused from the header', () => {
    const img = disk(layout());
    for (const lba of [1, layout().sectors - 1]) {
      const h = img.subarray(lba * SECTOR, lba * SECTOR + 92);
      h.writeUInt32LE(4096, 80);
      h.writeUInt32LE(1024 * 1024, 84);
      h.writeUInt32LE(0, 16);
      h.writeUInt32LE(crc32(h), 16);
    }
    expectInvalid(
      () => readPartitionTable(bufferSource(img, 'huge-entries.img')),
      /4096 entries of 1048576 bytes/,
    );
  });
});
