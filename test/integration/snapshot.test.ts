/**
 * Snapshots at ready against real QEMU (TCG), beyond the run suite's two modes
 * (run.test.ts): what must be fresh in every restored run (entropy, clock, nothing
 * left by the run before), snapshots that must not be restored (corrupt, from another
 * QEMU), eviction under a size budget, and `kjx build --snapshot`. The image has a
 * hostname of its own, so its snapshot key is this file's alone.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '../../src/util/hash.js';
import { removeAll, runKjx, SHARED_CACHE, workspace } from '../helpers/kjx.js';

const made: string[] = [];
after(() => removeAll(...made));

interface Report {
  outcome: string;
  status: number;
  stdout: string;
  start: { how: 'booted' | 'restored'; key?: string; saved?: { bytes: number } };
}

describe('snapshots at ready', () => {
  let ws: string;
  let state: string;
  const snapDir = join(SHARED_CACHE, 'snapshots');
  const run = (args: string[], env: Record<string, string> = {}) => {
    const r = runKjx(['run', '--accel', 'tcg', '--json', ...args], {
      cwd: ws,
      env: { KJX_STATE_DIR: state, ...env },
      timeoutMs: 240_000,
    });
    assert.equal(r.code, 0, r.stderr);
    return { ...(JSON.parse(r.stdout) as Report), stderr: r.stderr };
  };

  before(() => {
    ws = workspace('snapshot');
    writeFileSync(
      join(ws, 'kjx.yaml'),
      readFileSync(join(ws, 'kjx.yaml'), 'utf8').replace(/^hostname: kjx$/m, 'hostname: kjx-snap'),
    );
    state = mkdtempSync(join(tmpdir(), 'kjx-state-'));
    made.push(ws, state);
    const r = runKjx(['build', '--snapshot'], { cwd: ws, env: { KJX_STATE_DIR: state }, timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
  });

  test('kjx build --snapshot saves one ahead: the first run restores it', () => {
    const r = run(['--', 'hostname']);
    assert.equal(r.stdout, 'kjx-snap\n');
    assert.equal(r.start.how, 'restored');
    assert.ok(r.start.key && existsSync(join(snapDir, `${r.start.key}.snap`)));
  });

  test('two restored runs print different /proc/sys/kernel/random/uuid (the generator is reseeded)', () => {
    const a = run(['--', 'cat', '/proc/sys/kernel/random/uuid']);
    const b = run(['--', 'cat', '/proc/sys/kernel/random/uuid']);
    assert.equal(a.start.how, 'restored');
    assert.equal(b.start.how, 'restored');
    assert.match(a.stdout, /^[0-9a-f-]{36}\n$/);
    assert.notEqual(a.stdout, b.stdout);
  });

  test("a restored guest has the host's wall clock, not the saving boot's", () => {
    const r = run(['--', 'date', '+%s']);
    assert.equal(r.start.how, 'restored');
    const skew = Math.abs(Number(r.stdout) - Date.now() / 1000);
    assert.ok(skew < 60, `guest clock off by ${skew} s`);
  });

  test('nothing one run writes is seen by the next', () => {
    const a = run([
      '--',
      'sh',
      '-c',
      'echo secret >/root/left-behind; echo x >/tmp/t; cat /root/left-behind',
    ]);
    assert.equal(a.stdout, 'secret\n');
    const b = run(['--', 'sh', '-c', 'ls /root/left-behind /tmp/t 2>&1; true']);
    assert.equal(b.start.how, 'restored');
    assert.match(b.stdout, /left-behind.*No such file/);
    assert.match(b.stdout, /\/tmp\/t.*No such file/);
  });

  test('a corrupt snapshot is refused and rebuilt: the run boots, saves a good one, the next restores', () => {
    const key = run(['--', 'true']).start.key!;
    const stream = join(snapDir, `${key}.snap`);
    const b = readFileSync(stream);
    b[Math.floor(b.length / 2)] = b[Math.floor(b.length / 2)]! ^ 0xff;
    writeFileSync(stream, b);
    const r = run(['--', 'echo', 'ok']);
    assert.equal(r.stdout, 'ok\n');
    assert.equal(r.start.how, 'booted');
    assert.match(r.stderr, /snapshot [0-9a-f]{12} refused \(its stream does not match its sha256\)/);
    assert.ok(r.start.saved, 'a good snapshot was saved in its place');
    assert.equal(run(['--', 'true']).start.how, 'restored');
  });

  test('regression: a stream QEMU cannot load (sum and record fine) is dropped, and the run boots with its initramfs', () => {
    const key = run(['--', 'true']).start.key!;
    const stream = join(snapDir, `${key}.snap`);
    const rec = join(snapDir, `${key}.json`);
    // a whole zstd frame of bytes that are no migration stream, its record made to match
    const bogus = execFileSync('zstd', ['-q', '-c'], { input: Buffer.alloc(4096, 0x5a) });
    writeFileSync(stream, bogus);
    const j = JSON.parse(readFileSync(rec, 'utf8'));
    writeFileSync(rec, JSON.stringify({ ...j, size: bogus.length, sha256: sha256(bogus) }));
    const r = run(['--', 'echo', 'booted']);
    assert.equal(r.stdout, 'booted\n');
    assert.equal(r.start.how, 'booted');
    assert.match(r.stderr, /QEMU could not load snapshot/);
    assert.equal(run(['--', 'true']).start.how, 'restored');
  });

  test('a snapshot another QEMU saved is refused and rebuilt, never restored', () => {
    const key = run(['--', 'true']).start.key!;
    const rec = join(snapDir, `${key}.json`);
    const j = JSON.parse(readFileSync(rec, 'utf8'));
    writeFileSync(rec, JSON.stringify({ ...j, qemuVersion: 'QEMU emulator version 6.2.0' }));
    const r = run(['--', 'true']);
    assert.equal(r.start.how, 'booted');
    assert.match(r.stderr, /saved by QEMU emulator version 6\.2\.0/);
    assert.ok(r.start.saved);
    const j2 = JSON.parse(readFileSync(rec, 'utf8'));
    assert.notEqual(j2.qemuVersion, 'QEMU emulator version 6.2.0');
  });

  test('--cold boots, --no-save keeps the cache as it was', () => {
    const r = run(['--cold', '--no-save', '--', 'true']);
    assert.equal(r.start.how, 'booted');
    assert.equal(r.start.saved, undefined);
  });

  test('over the size budget the least recently used snapshot is evicted', () => {
    const a = run(['--', 'true']);
    assert.equal(a.start.how, 'restored');
    // another machine (memory) is another key; a budget of 1 MiB keeps only the newest
    const b = run(['--memory', '384', '--', 'true'], { KJX_SNAPSHOT_BUDGET_MIB: '1' });
    assert.ok(b.start.saved);
    assert.notEqual(b.start.key, a.start.key);
    assert.equal(existsSync(join(snapDir, `${a.start.key}.snap`)), false, 'the older one was evicted');
    assert.equal(existsSync(join(snapDir, `${b.start.key}.snap`)), true);
    const c = run(['--', 'true']);
    assert.equal(c.start.how, 'booted');
  });
});
