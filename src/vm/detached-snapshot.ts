/**
 * Snapshots of detached VMs (docs/boot-time.md, "Detached VMs"): `saveDetached` pauses
 * a running VM, streams its state through zstd (QMP `migrate` to `exec:`) and writes
 * one file atomically, a kjx header in front (snapshot-file.ts); like `virsh save`, the
 * VM is gone afterwards unless `leaveRunning`. `openSnapshotFile` reads such a file
 * back for `kjx boot --restore`, refusing one that is missing, not a kjx snapshot,
 * damaged, or from another QEMU, accelerator, image or VM configuration, before any
 * QEMU starts.
 */

import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { tempNameFor } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import { migrateToFile } from './migrate.js';
import { connectQmp } from './qmp.js';
import { isQemuPid, type MachineIdentity, removeVm, type VmRecord } from './registry.js';
import {
  decodeSnapshotHeader,
  encodeSnapshotHeader,
  type SnapshotFileHeader,
  snapshotHeaderLength,
} from './snapshot-file.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SaveResult {
  file: string;
  bytes: number;
  seconds: number;
  /** What happened to the VM: stopped (the default, as `virsh save`) or running. */
  vm: 'stopped' | 'running';
}

/**
 * Save a running detached VM into `out`: stop its CPUs, migrate through zstd into a
 * temporary file beside `out`, prepend the header, rename. On failure nothing is left
 * at `out` and the VM runs on.
 */
export async function saveDetached(
  rec: VmRecord,
  out: string,
  o: { leaveRunning?: boolean } = {},
): Promise<SaveResult> {
  const m = rec.machine;
  if (!m)
    throw new KjxError(
      'USAGE',
      `VM "${rec.name}" cannot be saved: it boots from a medium, or an older kjx started it`,
      {
        hint: 'snapshots hold direct boots (kernel and initramfs) that this kjx started with `kjx boot --detach`',
      },
    );
  const target = resolve(out);
  if (!existsSync(dirname(target)))
    throw new KjxError('USAGE', `cannot write ${out}: ${dirname(target)} does not exist`);
  const t0 = performance.now();
  const stream = `${tempNameFor(target)}.zst`;
  const whole = tempNameFor(target);
  const qmp = await connectQmp(rec.qmp, 5000);
  let saved = false;
  try {
    await qmp.execute('stop');
    await migrateToFile(qmp, stream, () => isQemuPid(rec.pid)).catch((err: unknown) => {
      throw new KjxError('VM_START', `saving ${rec.name} failed: ${(err as Error).message}`);
    });
    const { size, sha256 } = await hashFile(stream);
    const header: SnapshotFileHeader = {
      format: 1,
      key: m.key,
      qemuVersion: m.qemuVersion,
      accel: m.accel,
      artifacts: m.artifacts,
      hostKeys: rec.hostKeys,
      ...(rec.buildId ? { buildId: rec.buildId } : {}),
      sshPort: m.sshPort,
      createdAt: new Date().toISOString(),
      streamSize: size,
      streamSha256: sha256,
    };
    const w = createWriteStream(whole, { mode: 0o600 });
    w.write(encodeSnapshotHeader(header));
    await pipeline(createReadStream(stream), w);
    renameSync(whole, target);
    saved = true;
  } finally {
    rmSync(stream, { force: true });
    rmSync(whole, { force: true });
    // a failed save leaves the VM as it was; a good one stops it unless asked not to
    if (!saved || o.leaveRunning) await qmp.execute('cont').catch(() => {});
    else await qmp.execute('quit').catch(() => {});
    qmp.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  if (!o.leaveRunning) await endRecord(rec);
  return { file: target, bytes: statSync(target).size, seconds, vm: o.leaveRunning ? 'running' : 'stopped' };
}

/** QEMU was told to quit: wait for it (kill it if it lingers), then drop the record. */
async function endRecord(rec: VmRecord): Promise<void> {
  for (let i = 0; i < 100 && isQemuPid(rec.pid); i++) await sleep(50);
  if (isQemuPid(rec.pid)) {
    try {
      process.kill(rec.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  removeVm(rec);
}

async function hashFile(path: string, from = 0): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { start: from }) as AsyncIterable<Buffer>) {
    h.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: h.digest('hex') };
}

/** A snapshot file checked whole (header and stream sum); refused with a KjxError otherwise. */
export async function openSnapshotFile(path: string): Promise<{ path: string; header: SnapshotFileHeader }> {
  const abs = resolve(path);
  let fd: number;
  try {
    fd = openSync(abs, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KjxError(
      'USAGE',
      `snapshot ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`,
      {
        hint: 'save a running VM with `kjx snapshot NAME -o FILE` first',
      },
    );
  }
  let header: SnapshotFileHeader;
  let offset: number;
  try {
    if (!statSync(abs).isFile())
      throw new KjxError('SNAPSHOT_INVALID', `${path} is not a kjx snapshot (not a regular file)`);
    const first = Buffer.alloc(8);
    const got = readSync(fd, first, 0, 8, 0);
    offset = snapshotHeaderLength(first.subarray(0, got), path);
    const buf = Buffer.alloc(offset);
    const n = readSync(fd, buf, 0, offset, 0);
    header = decodeSnapshotHeader(buf.subarray(0, n), path);
  } finally {
    closeSync(fd);
  }
  const { size, sha256 } = await hashFile(abs, offset);
  if (size !== header.streamSize || sha256 !== header.streamSha256)
    throw new KjxError(
      'SNAPSHOT_INVALID',
      `snapshot ${path} is damaged: its stream does not match its sha256`,
      {
        hint: 'the file was truncated or changed after `kjx snapshot` wrote it; save the VM again',
      },
    );
  return { path: abs, header };
}

/** Refuse a snapshot that this QEMU, accelerator, image and VM configuration cannot restore. */
export function checkSnapshotFits(path: string, h: SnapshotFileHeader, want: MachineIdentity): void {
  const refuse = (what: string, hint: string) => {
    throw new KjxError('SNAPSHOT_MISMATCH', `snapshot ${path} ${what}`, { hint });
  };
  if (h.qemuVersion !== want.qemuVersion)
    refuse(
      `was saved by ${h.qemuVersion}, not ${want.qemuVersion}`,
      'restore it with the QEMU that saved it, or boot afresh',
    );
  if (h.accel !== want.accel)
    refuse(`was saved under ${h.accel}, not ${want.accel}`, `pass --accel ${h.accel}, or boot afresh`);
  const keys = new Set([...Object.keys(h.artifacts), ...Object.keys(want.artifacts)]);
  const differ = [...keys].filter((k) => h.artifacts[k] !== want.artifacts[k]);
  if (differ.length > 0)
    refuse(
      `is of another image (${differ.join(', ')} differ${differ.length === 1 ? 's' : ''})`,
      'restore it with the kjx.yaml and build it was saved from (-f), or boot afresh',
    );
  if (h.key !== want.key)
    refuse(
      'was saved from another VM configuration (memory, CPUs, devices or network)',
      'restore it with the same vm settings it was saved with, or boot afresh',
    );
}
