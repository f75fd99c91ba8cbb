/**
 * The snapshot store without QEMU: keys over what shapes a machine, records checked
 * on every lookup (damaged, foreign, other QEMU, other accelerator: removed and
 * absent), atomic adoption, and least-recently-used eviction under a budget. The
 * restores themselves are in test/integration/snapshot.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Warning } from '../../src/util/errors.js';
import {
  adoptSnapshot,
  evictSnapshots,
  findSnapshot,
  openSnapshots,
  type SnapshotKeyInput,
  snapshotKey,
  streamPath,
  tempStreamPath,
} from '../../src/vm/snapshots.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function store(budgetMiB = 1) {
  const d = mkdtempSync(join(tmpdir(), 'kjx-snap-'));
  dirs.push(d);
  return openSnapshots(d, budgetMiB);
}
const QEMU = 'QEMU emulator version 7.2.22';
const want = { qemuVersion: QEMU, accel: 'tcg' as const };
function save(
  s: ReturnType<typeof store>,
  key: string,
  bytes: number,
  meta: { qemuVersion: string; accel: 'kvm' | 'tcg' } = want,
) {
  const t = tempStreamPath(s, key);
  writeFileSync(t, Buffer.alloc(bytes, 7));
  return adoptSnapshot(s, key, t, meta);
}
function warnings(): { warn: (w: Warning) => void; seen: Warning[] } {
  const seen: Warning[] = [];
  return { warn: (w) => seen.push(w), seen };
}

test('the key changes with the QEMU version, the accelerator, the argv and the artifacts', () => {
  const base: SnapshotKeyInput = {
    argv: ['qemu-system-x86_64', '-m', '512'],
    artifacts: { kernel: 'a', initrd: 'b' },
    qemuVersion: QEMU,
    accel: 'tcg',
  };
  const k = snapshotKey(base);
  assert.equal(snapshotKey({ ...base }), k);
  assert.notEqual(snapshotKey({ ...base, qemuVersion: 'QEMU emulator version 8.0.0' }), k);
  assert.notEqual(snapshotKey({ ...base, accel: 'kvm' }), k);
  assert.notEqual(snapshotKey({ ...base, argv: ['qemu-system-x86_64', '-m', '1024'] }), k);
  assert.notEqual(snapshotKey({ ...base, artifacts: { kernel: 'a', initrd: 'c' } }), k);
});

test('a saved snapshot is found, and its use is recorded', () => {
  const s = store();
  const t = tempStreamPath(s, 'k1');
  writeFileSync(t, Buffer.alloc(1000, 7));
  const services = [{ name: 'sshd', state: 'ready', uptime: 3.2 }];
  adoptSnapshot(s, 'k1', t, { ...want, services });
  const old = new Date(Date.now() - 3600_000);
  const record = join(s.dir, 'k1.json');
  utimesSync(record, old, old);
  const w = warnings();
  assert.equal(findSnapshot(s, 'k1', want, w.warn)?.stream, streamPath(s, 'k1'));
  assert.deepEqual(w.seen, []);
  assert.deepEqual(
    findSnapshot(s, 'k1', want, w.warn)?.record.services,
    services,
    "the saving boot's services",
  );
  utimesSync(record, old, old);
  const streamStat = statSync(streamPath(s, 'k1'), { bigint: true });
  findSnapshot(s, 'k1', want, w.warn);
  assert.ok(statSync(record).mtimeMs > old.getTime() + 1000, 'its use counts for eviction');
  assert.equal(
    statSync(streamPath(s, 'k1'), { bigint: true }).ctimeNs,
    streamStat.ctimeNs,
    'the stream itself is not touched: its stamp stays good',
  );
  assert.equal(findSnapshot(s, 'absent', want, w.warn), undefined);
  assert.deepEqual(w.seen, [], 'nothing saved is no warning');
});

test('a corrupt snapshot (a flipped byte, a truncated stream) is refused and removed', () => {
  const s = store();
  for (const damage of ['flip', 'truncate'] as const) {
    save(s, 'k', 4096);
    const p = streamPath(s, 'k');
    // found once, so its stamp is kept: the damage must show through it
    assert.ok(findSnapshot(s, 'k', want, () => {}));
    const b = readFileSync(p);
    if (damage === 'flip') b[100] = b[100]! ^ 1;
    writeFileSync(p, damage === 'flip' ? b : b.subarray(0, 100));
    const w = warnings();
    assert.equal(findSnapshot(s, 'k', want, w.warn), undefined);
    assert.equal(w.seen[0]?.code, 'SNAPSHOT_REFUSED');
    assert.match(w.seen[0]!.message, /sha256/);
    assert.equal(existsSync(p), false, 'a damaged stream stays no longer');
  }
});

test('a snapshot another QEMU or accelerator saved is refused, never restored', () => {
  const s = store();
  save(s, 'k', 10, { qemuVersion: 'QEMU emulator version 8.2.1', accel: 'tcg' });
  const w = warnings();
  assert.equal(findSnapshot(s, 'k', want, w.warn), undefined);
  assert.match(w.seen[0]!.message, /saved by QEMU emulator version 8\.2\.1/);
  save(s, 'k', 10, { qemuVersion: QEMU, accel: 'kvm' });
  assert.equal(findSnapshot(s, 'k', want, w.warn), undefined);
  assert.match(w.seen[1]!.message, /saved under kvm, not tcg/);
});

test('a record that is not JSON or names another key is refused', () => {
  const s = store();
  save(s, 'k', 10);
  writeFileSync(join(s.dir, 'k.json'), '{"format":');
  const w = warnings();
  assert.equal(findSnapshot(s, 'k', want, w.warn), undefined);
  save(s, 'k2', 10);
  writeFileSync(join(s.dir, 'k.json'), readFileSync(join(s.dir, 'k2.json')));
  writeFileSync(streamPath(s, 'k'), Buffer.alloc(10, 7));
  assert.equal(findSnapshot(s, 'k', want, w.warn), undefined);
  assert.equal(w.seen.length, 2);
});

test('over the budget, the least recently used snapshots go first, never the one just saved', () => {
  const s = store(1); // 1 MiB
  const mib = 1024 * 1024;
  save(s, 'a', 0.4 * mib);
  save(s, 'b', 0.4 * mib);
  const t = Date.now() / 1000;
  utimesSync(join(s.dir, 'a.json'), t - 100, t - 100);
  utimesSync(join(s.dir, 'b.json'), t - 200, t - 200);
  // a was used after b: b goes when c does not fit
  save(s, 'c', 0.4 * mib);
  assert.equal(existsSync(streamPath(s, 'b')), false);
  assert.equal(existsSync(streamPath(s, 'a')), true);
  assert.equal(existsSync(streamPath(s, 'c')), true);
  // one larger than the budget is kept: it was just saved, and the next run wants it
  save(s, 'big', 2 * mib);
  assert.equal(existsSync(streamPath(s, 'big')), true);
  assert.equal(existsSync(streamPath(s, 'a')), false);
  assert.equal(existsSync(streamPath(s, 'c')), false);
  assert.deepEqual(evictSnapshots(s), ['big']);
});

test("a dead save's temporary stream is removed, a live one's left alone", () => {
  const s = store();
  const dead = join(s.dir, '.k.snap.tmp-999999999-1');
  const mine = tempStreamPath(s, 'k');
  writeFileSync(dead, 'x');
  writeFileSync(mine, 'x');
  evictSnapshots(s);
  assert.equal(existsSync(dead), false);
  assert.equal(existsSync(mine), true);
});
