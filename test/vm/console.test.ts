/**
 * The one console follower (src/vm/console.ts), fed as a pipe feeds it (chunks that
 * split lines anywhere) and as a detached VM's log file grows (`tailConsole`).
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { newNonce } from '../../src/guest/markers.js';
import { isKjxError, KjxError } from '../../src/util/errors.js';
import { followConsole, tailConsole } from '../../src/vm/console.js';

const dir = mkdtempSync(join(tmpdir(), 'kjx-console-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const nonce = newNonce();
const BOOT = [
  'SeaBIOS (version 1.16)',
  `@@kjx:${nonce}:init`,
  '@@kjx:init',
  `@@kjx:${nonce}:service name=ssh state=up t=1.5`,
  `junk @@kjx:${nonce}:ready build=forged`,
  `@@kjx:${newNonce()}:ready build=guessed`,
  `@@kjx:${nonce}:ready build=abc uptime=2.5`,
  'login: ',
].join('\r\n');

describe('followConsole', () => {
  test('the same markers whether the text comes whole or one character at a time', () => {
    const whole = followConsole({ nonce });
    whole.push(BOOT);
    const bytewise = followConsole({ nonce });
    for (const ch of BOOT) bytewise.push(ch);
    for (const f of [whole, bytewise]) {
      assert.deepEqual(
        f.markers().map((m) => [m.event, m.fields]),
        [
          ['init', {}],
          ['service', { name: 'ssh', state: 'up', t: '1.5' }],
          ['ready', { build: 'abc', uptime: '2.5' }],
        ],
      );
      assert.equal(f.text(), BOOT);
      // a nonceless init after a real marker is text: only before the first one does it mean anything
      assert.equal(f.nonceMissing(), undefined);
    }
  });

  test('waits: a marker already seen at once, a later one when it comes; a log file gets everything', async () => {
    const log = join(dir, 'console.log');
    writeFileSync(log, 'stale');
    const f = followConsole({ nonce, log });
    assert.equal(readFileSync(log, 'utf8'), '', 'the log starts empty');
    f.push(`@@kjx:${nonce}:init\n`);
    assert.equal((await f.waitForMarker('init', 1000)).event, 'init');
    const ready = f.waitForMarker('ready', 60_000);
    const line = f.waitForLine(/^login:/, 60_000);
    f.push(`@@kjx:${nonce}:rea`);
    f.push('dy build=x\nlogin: root\n');
    assert.equal((await ready).fields.build, 'x');
    assert.equal(await line, 'login: root');
    assert.equal(readFileSync(log, 'utf8'), f.text());
  });

  test('a panic line settles `panic` and fails every wait with GUEST_PANIC', async () => {
    const f = followConsole({ nonce });
    const wait = f.waitForMarker('ready', 60_000);
    f.push('[    1.0] BUG: soft lockup - CPU#0 stuck for 22s!\n');
    f.push('[    2.0] Kernel panic - not syncing: Attempted to kill init!\n');
    await assert.rejects(wait, (e: unknown) => isKjxError(e) && e.code === 'GUEST_PANIC');
    const p = await f.panic;
    assert.match(p.line, /^\[ {4}2\.0\] Kernel panic/);
    assert.match(p.excerpt, /soft lockup/);
  });

  test('a guest that cannot read its nonce fails the waits at once, with the fix in the hint', async () => {
    const f = followConsole({ nonce });
    const wait = f.waitForMarker('ready', 60_000);
    f.push('@@kjx::init\n');
    await assert.rejects(wait, /init marker carries no boot nonce/);
    assert.match(f.nonceMissing()?.hint ?? '', /qemu_fw_cfg/);
    await assert.rejects(f.waitForMarker('exit', 60_000), /init marker carries no boot nonce/);
  });

  test('the end of the console fails pending and later waits with the reason given, naming what was awaited', async () => {
    const f = followConsole({ nonce });
    const wait = f.waitForMarker('ready', 60_000);
    f.end((what) => new KjxError('VM_START', `QEMU exited before ${what}`));
    await assert.rejects(wait, /QEMU exited before the guest marker "ready"/);
    await assert.rejects(f.waitForLine(/x/, 60_000), /QEMU exited before a console line matching \/x\//);
  });

  test('a wait that runs out is VM_TIMEOUT with the console tail', async () => {
    const f = followConsole({ nonce });
    f.push('still booting\n');
    await assert.rejects(
      f.waitForMarker('ready', 50),
      (e: unknown) => isKjxError(e) && e.code === 'VM_TIMEOUT' && /still booting/.test(e.details.join('\n')),
    );
  });
});

describe('tailConsole', () => {
  test('follows a file as another process appends to it, and ends once the writer is gone and all is read', async () => {
    const log = join(dir, 'detached.log');
    writeFileSync(log, '');
    const f = followConsole({ nonce });
    let writerAlive = true;
    const tail = tailConsole(log, f, {
      alive: () => writerAlive,
      gone: (what) => new KjxError('VM_START', `QEMU exited before ${what}`),
      everyMs: 10,
    });
    try {
      const ready = f.waitForMarker('ready', 60_000);
      appendFileSync(log, `@@kjx:${nonce}:init\n@@kjx:${nonce}:hostkey type=ed25519 sha256=`);
      appendFileSync(log, `${'A'.repeat(43)}\n@@kjx:${nonce}:ready build=b\n`);
      assert.equal((await ready).fields.build, 'b');
      assert.deepEqual(
        f.markers().map((m) => m.event),
        ['init', 'hostkey', 'ready'],
      );
      // the writer's last words, then it is gone: they are read before the end is said
      const exit = f.waitForMarker('exit', 60_000);
      appendFileSync(log, `@@kjx:${nonce}:exit status=0\n`);
      writerAlive = false;
      assert.equal((await exit).fields.status, '0');
      await assert.rejects(f.waitForMarker('never', 60_000), /QEMU exited before the guest marker "never"/);
    } finally {
      tail.stop();
    }
  });

  test('regression: stopping the tail fails the waits still pending (a detached boot ended by --silence kept its ready wait, and the process, alive for 24 days)', async () => {
    const log = join(dir, 'stopped.log');
    writeFileSync(log, '');
    const f = followConsole({ nonce });
    const tail = tailConsole(log, f, {
      alive: () => true,
      gone: (what) => new KjxError('VM_START', `QEMU exited before ${what}`),
      everyMs: 10,
    });
    const ready = f.waitForMarker('ready', 2 ** 31 - 1);
    tail.stop();
    const settled = await Promise.race([
      ready.then(
        () => 'resolved',
        (e: unknown) => e,
      ),
      new Promise((r) => setTimeout(() => r('still waiting'), 2000).unref()),
    ]);
    // without the fix the wait holds a 24-day timer: end it so this file can finish
    f.end((what) => new KjxError('VM_START', `test cleanup before ${what}`));
    assert.ok(
      isKjxError(settled) &&
        /stopped following the console before the guest marker "ready"/.test(settled.message),
      String(settled),
    );
    await assert.rejects(f.waitForMarker('exit', 60_000), /stopped following the console/);
  });
});
