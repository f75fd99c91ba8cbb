/**
 * Snapshots of ephemeral VMs at ready, in kjx's cache (docs/boot-time.md, "Snapshots"):
 *
 *   snapshots/<key>.snap   QEMU's migration stream, zstd-compressed
 *   snapshots/<key>.json   what it is: format, key, QEMU version, accelerator, size, sha256
 *
 * The key is the hash of everything that shapes the saved machine (snapshotKey): the
 * artifacts, the VM configuration as QEMU's argv, the QEMU version and the
 * accelerator. A stream is written to a temporary name and renamed, its record last,
 * so an entry without a record does not exist. Every lookup checks the record against
 * the key and the stream against its sha256: a damaged or foreign entry is removed and
 * reads as absent, and the caller boots instead (and saves a good one). Entries are
 * evicted least recently used first (the record's mtime, touched on each use) once
 * they exceed a size budget.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
} from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import type { Warning } from '../util/errors.js';
import { sha256Matches } from '../util/file-stamp.js';
import { hashValue } from '../util/hash.js';
import { sha256File } from '../util/hash-file.js';
import { abandonedTemp } from '../util/pid.js';
import type { ServiceEvent } from './boot-phases.js';

/** Bump when the meaning of a stream or record changes. */
export const SNAPSHOT_FORMAT = 1;

/** Default budget for all snapshots together (KJX_SNAPSHOT_BUDGET_MIB overrides). */
export const DEFAULT_BUDGET_MIB = 2048;

/** What makes two saved machines interchangeable. */
export interface SnapshotKeyInput {
  /** QEMU's argv with the per-run parts (state directory, nonce) replaced by placeholders. */
  argv: string[];
  /** sha256 of the files QEMU loads (kernel, initrd with the hook payload). */
  artifacts: Record<string, string>;
  /** QEMU's `--version` first line. */
  qemuVersion: string;
  accel: 'kvm' | 'tcg';
}

export function snapshotKey(k: SnapshotKeyInput): string {
  return hashValue({ format: SNAPSHOT_FORMAT, ...k });
}

export interface SnapshotRecord {
  format: number;
  key: string;
  qemuVersion: string;
  accel: 'kvm' | 'tcg';
  /** Bytes of the stream on disk. */
  size: number;
  sha256: string;
  createdAt: string;
  /** The service state changes of the boot it was saved from (a restored run reports them). */
  services: ServiceEvent[];
}

export interface SnapshotStore {
  dir: string;
  budgetBytes: number;
}

export function openSnapshots(cacheRoot: string, budgetMiB?: number): SnapshotStore {
  const dir = join(cacheRoot, 'snapshots');
  mkdirSync(dir, { recursive: true });
  const env = Number(process.env.KJX_SNAPSHOT_BUDGET_MIB);
  const mib = budgetMiB ?? (Number.isFinite(env) && env > 0 ? env : DEFAULT_BUDGET_MIB);
  return { dir, budgetBytes: mib * 1024 * 1024 };
}

export function streamPath(s: SnapshotStore, key: string): string {
  return join(s.dir, `${key}.snap`);
}

function recordPath(s: SnapshotStore, key: string): string {
  return join(s.dir, `${key}.json`);
}

/** The stream's stat when its sha256 last matched (util/file-stamp.ts). */
function stampPath(s: SnapshotStore, key: string): string {
  return join(s.dir, `${key}.stamp`);
}

/** A path for a stream being written: in the store's directory, so the rename is atomic. */
export function tempStreamPath(s: SnapshotStore, key: string): string {
  return join(s.dir, `.${key}.snap.tmp-${process.pid}-${Date.now()}`);
}

export function removeSnapshot(s: SnapshotStore, key: string): void {
  rmSync(recordPath(s, key), { force: true });
  rmSync(streamPath(s, key), { force: true });
  rmSync(stampPath(s, key), { force: true });
}

/**
 * The stream to restore for `key`, checked, or undefined (nothing saved, or an entry
 * that is damaged or from another QEMU or accelerator: removed, with a warning).
 */
export function findSnapshot(
  s: SnapshotStore,
  key: string,
  want: { qemuVersion: string; accel: 'kvm' | 'tcg' },
  warn: (w: Warning) => void,
): { stream: string; record: SnapshotRecord } | undefined {
  const rec = recordPath(s, key);
  const stream = streamPath(s, key);
  if (!existsSync(rec)) return undefined;
  const refuse = (why: string): undefined => {
    warn({
      code: 'SNAPSHOT_REFUSED',
      message: `snapshot ${key.slice(0, 12)} refused (${why}); booting instead`,
    });
    removeSnapshot(s, key);
    return undefined;
  };
  let r: SnapshotRecord;
  try {
    r = JSON.parse(readFileSync(rec, 'utf8')) as SnapshotRecord;
  } catch {
    return refuse('its record is not JSON');
  }
  if (r.format !== SNAPSHOT_FORMAT || r.key !== key) return refuse('a record of another format or key');
  if (r.qemuVersion !== want.qemuVersion) return refuse(`saved by ${r.qemuVersion}`);
  if (r.accel !== want.accel) return refuse(`saved under ${r.accel}, not ${want.accel}`);
  let size: number;
  try {
    size = statSync(stream).size;
  } catch {
    return refuse('its stream is missing');
  }
  if (size !== r.size || !sha256Matches(stream, r.sha256, stampPath(s, key)))
    return refuse('its stream does not match its sha256');
  // the record's mtime says when it was last used: touching the stream would move the
  // ctime its stamp is made of, and cost the next run a read of the whole stream
  const now = new Date();
  utimesSync(rec, now, now);
  return { stream, record: { ...r, services: Array.isArray(r.services) ? r.services : [] } };
}

/**
 * Adopt a stream written at `temp` under `key`, then evict what exceeds the budget
 * (never the one just saved). Returns its record.
 */
export function adoptSnapshot(
  s: SnapshotStore,
  key: string,
  temp: string,
  meta: { qemuVersion: string; accel: 'kvm' | 'tcg'; services?: ServiceEvent[] },
): SnapshotRecord {
  const record: SnapshotRecord = {
    format: SNAPSHOT_FORMAT,
    key,
    ...meta,
    services: meta.services ?? [],
    size: statSync(temp).size,
    sha256: sha256File(temp),
    createdAt: new Date().toISOString(),
  };
  renameSync(temp, streamPath(s, key));
  writeFileAtomic(recordPath(s, key), `${JSON.stringify(record, null, 2)}\n`);
  evictSnapshots(s, key);
  return record;
}

/** Remove the least recently used entries until the store fits its budget; returns the keys removed. */
export function evictSnapshots(s: SnapshotStore, keep?: string): string[] {
  const entries = readdirSync(s.dir)
    .filter((f) => f.endsWith('.snap') && !f.startsWith('.'))
    .map((f) => {
      const key = f.slice(0, -'.snap'.length);
      const size = statSync(join(s.dir, f)).size;
      // a stream without a record is no snapshot: first to go
      const used = existsSync(recordPath(s, key)) ? statSync(recordPath(s, key)).mtimeMs : 0;
      return { key, size, used };
    })
    .sort((a, b) => a.used - b.used);
  let total = entries.reduce((n, e) => n + e.size, 0);
  const removed: string[] = [];
  for (const e of entries) {
    if (total <= s.budgetBytes) break;
    if (e.key === keep) continue;
    removeSnapshot(s, e.key);
    total -= e.size;
    removed.push(e.key);
  }
  // streams of saves that died half-way are of no use to anyone
  for (const f of readdirSync(s.dir))
    if (f.includes('.snap.tmp-') && abandonedTemp(f)) rmSync(join(s.dir, f), { force: true });
  return removed;
}
