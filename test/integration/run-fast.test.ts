/**
 * How `kjx run` hands the image to QEMU and what an ephemeral VM starts
 * (docs/boot-time.md, "Unpacked on the host" and "What a run VM starts"): the
 * PVH vmlinux, with the bzImage as fallback (the initramfs: test/vm/direct-boot.test.ts); no
 * console shell, power button or SSH server unless a service needs one, and
 * runsvdir is not kept waiting for the directory they were unlinked from.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { firstBytes, removeAll, runKjx, workspace } from '../helpers/kjx.js';

const made: string[] = [];
after(() => removeAll(...made));

describe('kjx run: what QEMU boots and what the guest starts', () => {
  let ws: string;
  let state: string;
  const run = (args: string[], env: Record<string, string> = {}) => {
    const r = runKjx(['run', '--accel', 'tcg', '--json', ...args], {
      cwd: ws,
      env: { KJX_STATE_DIR: state, ...env },
      timeoutMs: 180_000,
    });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { stdout: string; stateDir: string };
    const argv = JSON.parse(readFileSync(join(j.stateDir, 'argv.json'), 'utf8')) as string[];
    return { out: j.stdout, argv, stateDir: j.stateDir };
  };

  before(() => {
    ws = workspace('run-fast');
    state = mkdtempSync(join(tmpdir(), 'kjx-state-'));
    made.push(ws, state);
  });

  test('the kernel boots as the PVH vmlinux from the cache; nothing interactive starts', () => {
    const r = run(['--', 'sh', '-c', 'ls /etc/service; stat -c mtime=%Y /etc/service; echo end']);
    const kernel = r.argv[r.argv.indexOf('-kernel') + 1]!;
    assert.match(kernel, /\/kernels\/[0-9a-f]{64}\.vmlinux$/);
    assert.equal(firstBytes(kernel, 4), '\x7fELF');
    assert.equal(existsSync(join(r.stateDir, 'initrd')), false, 'the initramfs copy is gone with QEMU');
    assert.match(r.out, /end/);
    // stage 1 unlinked services, and stage 2 dated the directory back: runsvdir sleeps a
    // second before scanning a directory changed within the current second (stage2.sh)
    assert.match(r.out, /^mtime=0$/m);
    assert.doesNotMatch(r.out, /\b(ssh|console|acpid)\b/, r.out);
  });

  test('with KJX_NO_PVH=1 the bzImage boots as before', () => {
    const r = run(['--', 'uname', '-r'], { KJX_NO_PVH: '1' });
    assert.match(r.argv[r.argv.indexOf('-kernel') + 1]!, /\/dist\/vmlinuz$/);
    assert.match(r.out, /cloud-amd64/);
  });

  test('a service that needs ssh keeps it in a run VM', () => {
    const spec = readFileSync(join(ws, 'kjx.yaml'), 'utf8').replace(
      /^services:.*$/m,
      "services:\n  waiter:\n    run: 'while :; do sleep 60; done'\n    needs: [ssh]",
    );
    assert.match(spec, /waiter:/, 'the template has a services: line to replace');
    writeFileSync(join(ws, 'kjx.yaml'), spec);
    const r = run(['--', 'sh', '-c', 'ls /etc/service']);
    assert.match(r.out, /^ssh$/m);
    assert.match(r.out, /^waiter$/m);
    assert.doesNotMatch(r.out, /^(console|acpid)$/m);
  });
});
