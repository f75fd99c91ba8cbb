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
  stateDir: string;
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

  test('only a boot that saves pays for init_on_free (zeroed free pages keep the stream small)', () => {
    const cmdline = (r: Report) => {
      const argv = JSON.parse(readFileSync(join(r.stateDir, 'argv.json'), 'utf8')) as string[];
      return argv[argv.indexOf('-append') + 1] ?? '';
    };
    const plain = run(['--cold', '--no-save', '--', 'true']);
    assert.equal(plain.start.how, 'booted');
    assert.doesNotMatch(cmdline(plain), /init_on_free/);
    const saving = run(['--cold', '--', 'true']);
    assert.ok(saving.start.saved, 'the cold run saved a snapshot');
    assert.match(cmdline(saving), /(^| )init_on_free=1( |$)/);
    const restored = run(['--', 'true']);
    assert.equal(restored.start.how, 'restored');
    assert.match(cmdline(restored), /(^| )init_on_free=1( |$)/);
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

/**
 * `kjx test` with a check that has a preparation (docs/containers.md): the run hook
 * runs it before ready, so the snapshot `kjx build --snapshot` saves for kjx test
 * holds what it set up, and a restored run goes straight to the check. The
 * preparation draws a random id once; every restored run sees that same id.
 */
const PREP_FILES = `files:
  - path: /usr/lib/kjx/check-prep/prepped
    mode: "0755"
    content: |
      #!/bin/sh
      mkdir -p /var/lib/prepped && cat /proc/sys/kernel/random/uuid >/var/lib/prepped/id
      echo run >>/var/lib/prepped/runs
  - path: /usr/lib/kjx/checks/prepped
    mode: "0755"
    content: |
      #!/bin/sh
      echo "id $(cat /var/lib/prepped/id) runs $(wc -l </var/lib/prepped/runs)"
  - path: /usr/lib/kjx/check-prep/unprepared
    mode: "0755"
    content: |
      #!/bin/sh
      echo "no room for the image" >&2
      exit 3
  - path: /usr/lib/kjx/checks/unprepared
    mode: "0755"
    content: |
      #!/bin/sh
      echo "the check itself ran"
`;

interface TestReport {
  exitCode: number;
  checks: { name: string; status?: number; pass: boolean; output: string[] }[];
  start: { how: 'booted' | 'restored'; key?: string };
}

describe('check preparations in the snapshot kjx test restores', () => {
  let ws: string;
  let state: string;
  let built: { snapshot: { key: string }; testSnapshot?: { key: string; prepared: string[] } };
  const kjxTest = (args: string[]): TestReport => {
    const r = runKjx(['test', '--accel', 'tcg', '--json', ...args], {
      cwd: ws,
      env: { KJX_STATE_DIR: state },
      timeoutMs: 240_000,
    });
    assert.ok(r.stdout.trim().startsWith('{'), `kjx test printed no JSON (exit ${r.code}):\n${r.stderr}`);
    return JSON.parse(r.stdout) as TestReport;
  };

  before(() => {
    ws = workspace('snapshot-prep');
    writeFileSync(
      join(ws, 'kjx.yaml'),
      readFileSync(join(ws, 'kjx.yaml'), 'utf8')
        .replace(/^hostname: kjx$/m, 'hostname: kjx-prep')
        .replace(/^files: \[\]$/m, PREP_FILES),
    );
    state = mkdtempSync(join(tmpdir(), 'kjx-state-'));
    made.push(ws, state);
    const r = runKjx(['build', '--snapshot', '--accel', 'tcg', '--json'], {
      cwd: ws,
      env: { KJX_STATE_DIR: state },
      timeoutMs: 300_000,
    });
    assert.equal(r.code, 0, r.stderr);
    built = JSON.parse(r.stdout);
  });

  test('kjx build --snapshot saves a second snapshot for kjx test, after the preparations', () => {
    assert.deepEqual(built.testSnapshot?.prepared, ['prepped', 'unprepared']);
    assert.notEqual(built.testSnapshot?.key, built.snapshot.key);
  });

  test('restored runs of a check skip its preparation: they see what the saved boot prepared, once', () => {
    const a = kjxTest(['prepped']);
    const b = kjxTest(['prepped']);
    for (const r of [a, b]) {
      assert.equal(r.start.how, 'restored');
      assert.equal(r.start.key, built.testSnapshot?.key);
      assert.equal(r.exitCode, 0);
    }
    const [ca, cb] = [a, b].map((r) => r.checks[0]!.output);
    assert.match(ca?.[0] ?? '', /^kjx-test: prepared before ready \(t0=[0-9.]+ t1=[0-9.]+\)$/);
    assert.match(ca?.[1] ?? '', /^id [0-9a-f-]{36} runs 1$/);
    assert.deepEqual(cb, ca, 'the same prepared state in every restored run');
  });

  test('a booted run prepares the same way, before ready; a failed preparation fails its check with its output', () => {
    const r = kjxTest(['--cold', '--no-save', 'prepped', 'unprepared']);
    assert.equal(r.start.how, 'booted');
    const [prepped, unprepared] = r.checks;
    assert.match(prepped?.output[0] ?? '', /^kjx-test: prepared before ready \(t0=[0-9.]+ t1=[0-9.]+\)$/);
    assert.match(prepped?.output[1] ?? '', /^id [0-9a-f-]{36} runs 1$/);
    // the hook's try failed, so the runner tried again inside the check, and reports that
    assert.deepEqual(
      [unprepared?.pass, unprepared?.status, unprepared?.output],
      [false, 3, ['no room for the image']],
    );
    assert.equal(r.exitCode, 1);
  });

  test("kjx run restores the snapshot without preparations: nothing of kjx test's is in it", () => {
    const r = runKjx(
      [
        'run',
        '--accel',
        'tcg',
        '--json',
        '--',
        'sh',
        '-c',
        'ls /var/lib/prepped /run/kjx/check-prepared 2>&1; true',
      ],
      {
        cwd: ws,
        env: { KJX_STATE_DIR: state },
        timeoutMs: 240_000,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as Report;
    assert.equal(j.start.how, 'restored');
    assert.equal(j.start.key, built.snapshot.key);
    assert.match(j.stdout, /\/var\/lib\/prepped.*No such file/);
    assert.match(j.stdout, /check-prepared.*No such file/);
  });
});
