/**
 * The file `kjx snapshot NAME -o FILE` writes and `kjx boot --restore FILE` reads: a
 * zstd file whose first frame is a skippable frame (RFC 8878, section 3.1.2; magic
 * 0x184D2A5B) holding what the snapshot is, followed by QEMU's migration stream
 * compressed with zstd. zstd skips the first frame, so `zstd -d -c FILE` is the
 * stream QEMU loads with `-incoming`; kjx reads only the first frame:
 *
 *   u32le 0x184D2A5B | u32le N | "kjx-snapshot 1\n" + JSON (N bytes) | zstd frames
 *
 * The JSON says which QEMU, accelerator, machine (snapshotKey over argv and
 * artifacts) saved it, the host keys the guest had pinned, and the stream's size and
 * sha256. Pure bytes in and out: reading the file is detached-snapshot.ts's job.
 */
import { KjxError } from '../util/errors.js';
import type { HostKey } from './registry.js';

/** zstd's skippable frames are 0x184D2A50-5F; kjx takes one of them. */
export const SKIPPABLE_MAGIC = 0x184d2a5b;
export const SNAPSHOT_FILE_FORMAT = 1;
const TAG = `kjx-snapshot ${SNAPSHOT_FILE_FORMAT}\n`;
/** A header larger than this is not one kjx wrote (host keys and a few sums). */
export const MAX_HEADER_BYTES = 1 << 20;

export interface SnapshotFileHeader {
  format: number;
  /** The machine it was saved from (snapshots.ts snapshotKey over argv, artifacts, QEMU, accel). */
  key: string;
  qemuVersion: string;
  accel: 'kvm' | 'tcg';
  /** sha256 of the artifacts QEMU loaded (kernel, initrd). */
  artifacts: Record<string, string>;
  /** The host keys pinned at the VM's boot: a restored VM keeps them. */
  hostKeys: HostKey[];
  buildId?: string;
  /** The guest port dropbear listens on. */
  sshPort: number;
  createdAt: string;
  /** The zstd frames after the header: bytes and sha256. */
  streamSize: number;
  streamSha256: string;
}

export function encodeSnapshotHeader(h: SnapshotFileHeader): Buffer {
  const body = Buffer.from(`${TAG}${JSON.stringify(h)}\n`);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(SKIPPABLE_MAGIC, 0);
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

/**
 * How many bytes the header takes, from the file's first 8 bytes; SNAPSHOT_INVALID
 * when they are not a kjx snapshot's.
 */
export function snapshotHeaderLength(first: Buffer, where: string): number {
  if (first.length < 8 || first.readUInt32LE(0) !== SKIPPABLE_MAGIC)
    throw notSnapshot(where, 'no kjx header');
  const n = first.readUInt32LE(4);
  if (n < TAG.length || n > MAX_HEADER_BYTES) throw notSnapshot(where, `a header of ${n} bytes`);
  return 8 + n;
}

/** The header in `buf` (the file's first snapshotHeaderLength bytes), checked field by field. */
export function decodeSnapshotHeader(buf: Buffer, where: string): SnapshotFileHeader {
  const n = snapshotHeaderLength(buf, where);
  if (buf.length < n) throw notSnapshot(where, 'a truncated header');
  const text = buf.subarray(8, n).toString('utf8');
  if (!text.startsWith('kjx-snapshot ')) throw notSnapshot(where, 'no kjx-snapshot tag');
  if (!text.startsWith(TAG))
    throw new KjxError(
      'SNAPSHOT_INVALID',
      `${where} is a kjx snapshot of another format (${text.split('\n')[0]})`,
      {
        hint: `this kjx reads format ${SNAPSHOT_FILE_FORMAT}; save the VM again with this kjx (kjx snapshot NAME)`,
      },
    );
  let h: SnapshotFileHeader;
  try {
    h = JSON.parse(text.slice(TAG.length)) as SnapshotFileHeader;
  } catch {
    throw notSnapshot(where, 'a header that is not JSON');
  }
  const ok =
    typeof h === 'object' &&
    h !== null &&
    h.format === SNAPSHOT_FILE_FORMAT &&
    typeof h.key === 'string' &&
    typeof h.qemuVersion === 'string' &&
    (h.accel === 'kvm' || h.accel === 'tcg') &&
    typeof h.artifacts === 'object' &&
    h.artifacts !== null &&
    Array.isArray(h.hostKeys) &&
    Number.isInteger(h.sshPort) &&
    Number.isInteger(h.streamSize) &&
    h.streamSize > 0 &&
    typeof h.streamSha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(h.streamSha256);
  if (!ok) throw notSnapshot(where, 'a header with missing or malformed fields');
  return h;
}

function notSnapshot(where: string, why: string): KjxError {
  return new KjxError('SNAPSHOT_INVALID', `${where} is not a kjx snapshot (${why})`, {
    hint: 'give a file written by `kjx snapshot NAME -o FILE`',
  });
}
