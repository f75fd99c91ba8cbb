/**
 * The detached snapshot file's header without QEMU (src/vm/snapshot-file.ts): written
 * and read back, refused when it is not one kjx wrote (bad magic, truncated, a length
 * past the budget, another format, malformed fields), and the checks that refuse a
 * snapshot from another QEMU, accelerator, image or VM configuration
 * (detached-snapshot.ts). Real saves and restores are in
 * test/integration/detached-snapshot.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { KjxError } from '../../src/util/errors.js';
import { sha256 } from '../../src/util/hash.js';
import { checkSnapshotFits, openSnapshotFile } from '../../src/vm/detached-snapshot.js';
import type { MachineIdentity } from '../../src/vm/registry.js';
import {
  decodeSnapshotHeader,
  encodeSnapshotHeader,
  MAX_HEADER_BYTES,
  SKIPPABLE_MAGIC,
  type SnapshotFileHeader,
} from '../../src/vm/snapshot-file.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const stream = Buffer.from('not really zstd, but the header only sums it');
const header: SnapshotFileHeader = {
  format: 1,
  key: 'k'.repeat(64),
  qemuVersion: 'QEMU emulator version 7.2.22',
  accel: 'tcg',
  artifacts: { kernel: 'a'.repeat(64), pvh: 'true', initrd: 'b'.repeat(64) },
  hostKeys: [{ type: 'ed25519', sha256: 'x'.repeat(43) }],
  sshPort: 22,
  createdAt: '2026-12-02T00:00:00.000Z',
  streamSize: stream.length,
  streamSha256: sha256(stream),
};
const machine: MachineIdentity = {
  key: header.key,
  qemuVersion: header.qemuVersion,
  accel: 'tcg',
  artifacts: header.artifacts,
  sshPort: 22,
};

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KjxError, String(e));
    return `${e.code}: ${e.message}`;
  }
  return 'no error';
}

test('a header round-trips and starts with a zstd skippable frame', () => {
  const b = encodeSnapshotHeader(header);
  assert.equal(b.readUInt32LE(0), SKIPPABLE_MAGIC);
  assert.equal(b.readUInt32LE(4), b.length - 8);
  assert.deepEqual(decodeSnapshotHeader(b, 'f'), header);
});

test('a file that is not a kjx snapshot is refused: bad magic, truncated, oversized, other format, bad fields', () => {
  const good = encodeSnapshotHeader(header);
  assert.match(
    code(() => decodeSnapshotHeader(Buffer.from('\x28\xb5\x2f\xfd rest'), 'f')),
    /^SNAPSHOT_INVALID: f is not a kjx snapshot \(no kjx header\)/,
  );
  assert.match(
    code(() => decodeSnapshotHeader(good.subarray(0, 4), 'f')),
    /^SNAPSHOT_INVALID: .*no kjx header/,
  );
  assert.match(
    code(() => decodeSnapshotHeader(good.subarray(0, good.length - 3), 'f')),
    /truncated header/,
  );
  const huge = Buffer.from(good);
  huge.writeUInt32LE(MAX_HEADER_BYTES + 1, 4);
  assert.match(
    code(() => decodeSnapshotHeader(huge, 'f')),
    /a header of \d+ bytes/,
  );
  const other = Buffer.from(good.toString('latin1').replace('kjx-snapshot 1', 'kjx-snapshot 9'), 'latin1');
  assert.match(
    code(() => decodeSnapshotHeader(other, 'f')),
    /^SNAPSHOT_INVALID: f is a kjx snapshot of another format/,
  );
  const bad = encodeSnapshotHeader({ ...header, streamSha256: 'nope' });
  assert.match(
    code(() => decodeSnapshotHeader(bad, 'f')),
    /missing or malformed fields/,
  );
});

test('openSnapshotFile refuses a missing file, a stranger and a damaged stream, and accepts a whole one', async () => {
  const d = mkdtempSync(join(tmpdir(), 'kjx-snapfile-'));
  dirs.push(d);
  const whole = join(d, 'ok.kjxsnap');
  writeFileSync(whole, Buffer.concat([encodeSnapshotHeader(header), stream]));
  assert.deepEqual((await openSnapshotFile(whole)).header, header);
  const fail = async (p: string) => {
    try {
      await openSnapshotFile(p);
    } catch (e) {
      assert.ok(e instanceof KjxError);
      return `${e.code}: ${e.message}`;
    }
    return 'no error';
  };
  assert.match(await fail(join(d, 'missing')), /^USAGE: snapshot .*missing does not exist/);
  writeFileSync(join(d, 'text'), 'hello\n');
  assert.match(await fail(join(d, 'text')), /^SNAPSHOT_INVALID: .* is not a kjx snapshot/);
  assert.match(await fail(d), /^SNAPSHOT_INVALID: .*not a regular file/);
  writeFileSync(join(d, 'cut'), Buffer.concat([encodeSnapshotHeader(header), stream.subarray(1)]));
  assert.match(await fail(join(d, 'cut')), /^SNAPSHOT_INVALID: .* is damaged/);
});

test('a snapshot of another QEMU, accelerator, image or VM configuration does not fit', () => {
  assert.equal(
    code(() => checkSnapshotFits('f', header, machine)),
    'no error',
  );
  assert.match(
    code(() => checkSnapshotFits('f', header, { ...machine, qemuVersion: 'QEMU 8' })),
    /^SNAPSHOT_MISMATCH: snapshot f was saved by QEMU emulator version 7\.2\.22, not QEMU 8/,
  );
  assert.match(
    code(() => checkSnapshotFits('f', header, { ...machine, accel: 'kvm' })),
    /saved under tcg, not kvm/,
  );
  assert.match(
    code(() =>
      checkSnapshotFits('f', header, {
        ...machine,
        artifacts: { ...machine.artifacts, initrd: 'c'.repeat(64) },
      }),
    ),
    /is of another image \(initrd differs\)/,
  );
  assert.match(
    code(() => checkSnapshotFits('f', header, { ...machine, key: 'j'.repeat(64) })),
    /another VM configuration/,
  );
});
