/**
 * The VMDK's embedded descriptor is made reproducible after qemu-img wrote it
 * with a random CID. Regression: qemu-img rewrites the CID on the first write
 * into the text in place, and when the new number is shorter, the old text's
 * last bytes stay behind its NUL; kjx kept them, and one CI run in about eight
 * built a kjx.vmdk that differed from the same build elsewhere.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { convertDisk, fixVmdkDescriptor } from '../../src/image/disk.js';

const SECTOR = 512;
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kjx-vmdk-'));
  const raw = Buffer.alloc(1024 * 1024);
  raw.write('some data the disk holds', 128 * 1024);
  writeFileSync(join(dir, 'disk.raw'), raw);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The descriptor area: its offset and size from the sparse header. */
function descriptorArea(path: string): { offset: number; size: number } {
  const h = readFileSync(path).subarray(0, SECTOR);
  return { offset: Number(h.readBigUInt64LE(28)) * SECTOR, size: Number(h.readBigUInt64LE(36)) * SECTOR };
}

function readArea(path: string): Buffer {
  const { offset, size } = descriptorArea(path);
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(size);
    readSync(fd, b, 0, size, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** Rewrite the descriptor the way qemu-img's CID update does: new text, old tail after its NUL. */
function qemuStyleCid(path: string, cid: string): void {
  const { offset } = descriptorArea(path);
  const area = readArea(path);
  const text = area.toString('latin1', 0, area.indexOf(0));
  const shorter = text.replace(/^CID=[0-9a-f]+$/m, `CID=${cid}`);
  assert.ok(shorter.length < text.length, 'the test needs a shorter CID than qemu-img wrote');
  const next = Buffer.from(area);
  next.write(`${shorter}\0`, 0, 'latin1');
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, next, 0, next.length, offset);
  } finally {
    closeSync(fd);
  }
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

test('regression: bytes qemu-img left after the descriptor text do not reach the vmdk', async () => {
  const clean = join(dir, 'clean.vmdk');
  const dirty = join(dir, 'dirty.vmdk');
  await convertDisk(join(dir, 'disk.raw'), clean, 'vmdk');
  await convertDisk(join(dir, 'disk.raw'), dirty, 'vmdk');
  qemuStyleCid(dirty, 'a');
  const before = readArea(dirty);
  assert.notEqual(before.indexOf(0), before.length - 1, 'bytes follow the NUL before the fix');
  assert.ok(
    before.subarray(before.indexOf(0)).some((b) => b !== 0),
    'the old tail is there before the fix',
  );

  fixVmdkDescriptor(clean, 'kjx.vmdk', 0x1234abcd);
  fixVmdkDescriptor(dirty, 'kjx.vmdk', 0x1234abcd);

  const area = readArea(dirty);
  const text = area.toString('latin1', 0, area.indexOf(0));
  assert.match(text, /^CID=1234abcd$/m);
  assert.match(text, /^RW \d+ SPARSE "kjx.vmdk"$/m);
  assert.ok(
    area.subarray(area.indexOf(0)).every((b) => b === 0),
    'zero after the text',
  );
  assert.equal(sha(dirty), sha(clean), 'the same disk gives the same vmdk bytes');
});
