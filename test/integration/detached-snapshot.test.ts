/**
 * Snapshots of detached VMs against real QEMU (TCG): `kjx snapshot NAME -o FILE`
 * saves a running VM and stops it (as `virsh save`), `kjx boot --restore FILE --name N`
 * starts it again with its files, its pinned host key, the host's clock and a fresh
 * random generator, SSH works and `kjx stop` ends it; bad snapshot files and a name in
 * use are refused before any QEMU starts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  decodeSnapshotHeader,
  encodeSnapshotHeader,
  snapshotHeaderLength,
} from '../../src/vm/snapshot-file.js';
import { alive, removeAll, runKjx, workspace } from '../helpers/kjx.js';

describe('kjx snapshot and kjx boot --restore', () => {
  let ws: string;
  let state: string;
  let file: string;
  const kjx = (args: string[]) =>
    runKjx(args, { cwd: ws, env: { KJX_STATE_DIR: state }, timeoutMs: 300_000 });
  const restore = (f: string, name: string, extra: string[] = []) =>
    kjx(['boot', '--restore', f, '--name', name, '--accel', 'tcg', '--json', ...extra]);
  /** The file with its header changed by `edit`, the stream kept. */
  const edited = (name: string, edit: (h: ReturnType<typeof decodeSnapshotHeader>) => void) => {
    const b = readFileSync(file);
    const n = snapshotHeaderLength(b, file);
    const h = decodeSnapshotHeader(b.subarray(0, n), file);
    edit(h);
    const out = join(ws, name);
    writeFileSync(out, Buffer.concat([encodeSnapshotHeader(h), b.subarray(n)]));
    return out;
  };

  before(() => {
    ws = workspace('detached-snapshot');
    state = mkdtempSync(join(tmpdir(), 'kjx-state-'));
    file = join(ws, 'a.kjxsnap');
    const r = kjx(['build']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => {
    kjx(['stop', '--all', '--timeout', '1']);
    removeAll(ws, state);
  });

  test('a saved VM stops; restored twice it keeps its files and host key, takes the host clock and fresh randomness, and stops', () => {
    const b = kjx(['boot', '--detach', '--name', 'a', '--accel', 'tcg', '--json']);
    assert.equal(b.code, 0, b.stderr);
    const rec = JSON.parse(b.stdout);
    assert.ok(rec.hostKeys.length > 0, 'no host key pinned');
    assert.equal(kjx(['exec', 'a', '--', 'sh', '-c', 'echo kept >/root/mark']).code, 0);

    const s = kjx(['snapshot', 'a', '-o', file, '--json']);
    assert.equal(s.code, 0, s.stderr);
    const saved = JSON.parse(s.stdout);
    assert.equal(saved.vm, 'stopped');
    assert.ok(saved.bytes > 1024 * 1024, `a snapshot of ${saved.bytes} bytes`);
    assert.ok(!alive(rec.pid), 'the saved VM still runs');
    assert.equal(JSON.parse(kjx(['ps', '--json']).stdout).length, 0);

    const uuids: string[] = [];
    for (const name of ['b', 'c']) {
      const r = restore(file, name);
      assert.equal(r.code, 0, r.stderr);
      const restored = JSON.parse(r.stdout);
      assert.deepEqual(restored.hostKeys, rec.hostKeys, 'the restored VM pins another host key');
      assert.match(restored.restoredFrom, /a\.kjxsnap$/);
      const ex = kjx([
        'exec',
        name,
        '--',
        'sh',
        '-c',
        'cat /root/mark; date +%s; cat /proc/sys/kernel/random/uuid',
      ]);
      assert.equal(ex.code, 0, ex.stderr);
      const [mark, clock, uuid] = ex.stdout.trim().split('\n');
      assert.equal(mark, 'kept');
      const skew = Math.abs(Number(clock) - Date.now() / 1000);
      assert.ok(skew < 60, `guest clock off by ${skew} s`);
      uuids.push(uuid!);
    }
    assert.notEqual(uuids[0], uuids[1], 'two restores of one file share their random generator');

    const dup = restore(file, 'b');
    assert.equal(dup.code, 2);
    assert.match(dup.stderr, /a VM named "b" is already running/);

    const st = kjx(['stop', 'b', 'c', '--timeout', '5']);
    assert.equal(st.code, 0, st.stderr);
    assert.equal(JSON.parse(kjx(['ps', '--json']).stdout).length, 0);
  });

  test('--leave-running saves a VM and lets it run on', () => {
    const r = restore(file, 'd');
    assert.equal(r.code, 0, r.stderr);
    const out = join(ws, 'd.kjxsnap');
    const s = kjx(['snapshot', 'd', '-o', out, '--leave-running', '--json']);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout).vm, 'running');
    const ex = kjx(['exec', 'd', '--', 'cat', '/root/mark']);
    assert.equal(ex.code, 0, ex.stderr);
    assert.equal(ex.stdout, 'kept\n');
    assert.equal(kjx(['stop', 'd', '--timeout', '5']).code, 0);
  });

  test('a missing file, a stranger, a damaged stream and another QEMU, accelerator or image are refused', () => {
    const missing = restore(join(ws, 'nope.kjxsnap'), 'e');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.kjxsnap does not exist/);

    writeFileSync(join(ws, 'stranger'), 'hello\n');
    const stranger = restore(join(ws, 'stranger'), 'e');
    assert.equal(stranger.code, 5);
    assert.match(stranger.stderr, /is not a kjx snapshot/);

    const whole = readFileSync(file);
    writeFileSync(join(ws, 'cut.kjxsnap'), whole.subarray(0, whole.length - 100));
    const cut = restore(join(ws, 'cut.kjxsnap'), 'e');
    assert.equal(cut.code, 5);
    assert.match(cut.stderr, /is damaged/);

    const cases: [string, (h: ReturnType<typeof decodeSnapshotHeader>) => void, RegExp][] = [
      [
        'qemu',
        (h) => (h.qemuVersion = 'QEMU emulator version 1.0'),
        /was saved by QEMU emulator version 1\.0/,
      ],
      ['accel', (h) => (h.accel = 'kvm'), /was saved under kvm, not tcg/],
      [
        'image',
        (h) => (h.artifacts = { ...h.artifacts, initrd: '0'.repeat(64) }),
        /is of another image \(initrd differs\)/,
      ],
      ['config', (h) => (h.key = '0'.repeat(64)), /another VM configuration/],
    ];
    for (const [name, edit, want] of cases) {
      const r = restore(edited(`${name}.kjxsnap`, edit), 'e');
      assert.equal(r.code, 5, `${name}: ${r.stderr}`);
      assert.match(r.stderr, want);
    }
    assert.equal(JSON.parse(kjx(['ps', '--json']).stdout).length, 0, 'a refused restore left a VM');
  });
});
