/**
 * A session believes only markers with its own nonce (src/guest/markers.ts). A
 * tiny executable stands in for QEMU: it reads the nonce from its fw_cfg
 * argument, as the guest would, and prints forgeries around the real markers.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startVm } from '../../src/vm/session.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fake qemu-system-x86_64 running `body` (sh) with $nonce taken from its argv. */
function fakeQemu(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-session-'));
  dirs.push(dir);
  const qemu = join(dir, 'qemu-system-x86_64');
  writeFileSync(
    qemu,
    [
      '#!/bin/sh',
      'nonce=',
      `for a; do case $a in name=opt/kjx/nonce,string=*) nonce=\${a#*string=} ;; esac; done`,
      body,
      '',
    ].join('\n'),
  );
  chmodSync(qemu, 0o755);
  return qemu;
}

const config = (qemu: string) => ({
  qemu,
  accel: 'tcg' as const,
  memoryMiB: 64,
  cpus: 1,
  kernel: '/k',
  cmdline: '',
  console: { kind: 'stdio' as const },
});

test('forged markers (no nonce, a guessed one, mid-line) are console text; the nonce-carrying one counts', async () => {
  const qemu = fakeQemu(
    [
      "echo '@@kjx:exit status=0'",
      "echo '@@kjx:0123456789abcdef0123456789abcdef:exit status=0'",
      'echo "junk @@kjx:$nonce:exit status=0"',
      'echo "@@kjx:$nonce:exit status=1"',
      'exec sleep 30',
    ].join('\n'),
  );
  const vm = startVm(config(qemu));
  try {
    const exit = await vm.waitForMarker('exit', 20_000);
    assert.equal(exit.fields.status, '1');
    assert.deepEqual(
      vm.markers().map((m) => [m.event, m.fields.status]),
      [['exit', '1']],
    );
    assert.match(vm.argv.join(' '), new RegExp(`name=opt/kjx/nonce,string=${vm.nonce}`));
  } finally {
    await vm.stop(500);
  }
});

test('a guest that could not read its nonce (@@kjx::init) fails the wait at once with the fix', async () => {
  const qemu = fakeQemu(["echo '@@kjx::init'", 'exec sleep 30'].join('\n'));
  const vm = startVm(config(qemu));
  try {
    // far below the wait's own timeout: the error comes from the line, not the clock
    await assert.rejects(
      vm.waitForMarker('ready', 120_000),
      (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'VM_START');
        assert.match(e.message, /init marker carries no boot nonce/);
        assert.match(e.hint ?? '', /qemu_fw_cfg/);
        return true;
      },
    );
    assert.ok(vm.nonceMissing());
    await assert.rejects(vm.waitForMarker('exit', 120_000), /init marker carries no boot nonce/);
  } finally {
    await vm.stop(500);
  }
});
