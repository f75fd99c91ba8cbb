/**
 * `kjx boot --artifact KIND --firmware bios|uefi` against real QEMU (TCG): a
 * detached qcow2 disk (SeaBIOS) and a detached ISO (OVMF) answer `kjx exec` and
 * stop; the bad choices are USAGE errors before any build work; `kjx run` with a
 * medium gets its command over fw_cfg (ISO, and a UEFI-booted qcow2 it must not
 * change). One QEMU at a time, each stopped and checked gone by pid.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { alive, removeAll, runKjx } from '../helpers/kjx.js';
import { mediaProject } from '../helpers/media.js';

describe('kjx boot|run --artifact (TCG)', () => {
  let ws: string;
  let state: string;
  const kjx = (args: string[]) =>
    runKjx(args, { cwd: ws, env: { KJX_STATE_DIR: state }, timeoutMs: 600_000 });

  before(() => {
    ws = mediaProject('media-run', ['iso', 'qcow2']);
    state = mkdtempSync(join(tmpdir(), 'kjx-state-'));
    const r = kjx(['build']);
    assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
  });
  after(() => {
    kjx(['stop', '--all', '--timeout', '1']);
    removeAll(dirname(ws), state);
  });

  test('an artifact the spec does not build, or an unknown kind or firmware, is a usage error', () => {
    const missing = kjx(['boot', '--detach', '--artifact', 'vmdk', '--accel', 'tcg']);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /the spec does not build vmdk \(outputs: \[iso, qcow2\]\)/);
    assert.match(missing.stderr, /add vmdk to `outputs:`/);
    // media only: no initramfs to boot directly (the default artifact)
    const direct = kjx(['run', '--accel', 'tcg', '--', 'true']);
    assert.equal(direct.code, 2, direct.stderr);
    assert.match(direct.stderr, /does not build initramfs/);
    const unknown = kjx(['boot', '--artifact', 'floppy']);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /--artifact floppy: expected initramfs, iso, raw, qcow2, vmdk/);
    const fw = kjx(['run', '--firmware', 'coreboot', '--', 'true']);
    assert.equal(fw.code, 2, fw.stderr);
    assert.match(fw.stderr, /--firmware coreboot: expected bios or uefi/);
  });

  test('kjx run --artifact iso: the command comes over fw_cfg, its output and status come back', () => {
    const r = kjx([
      'run',
      '--artifact',
      'iso',
      '--accel',
      'auto',
      '--timing',
      '--',
      'sh',
      '-c',
      'echo hi; echo oops >&2; exit 4',
    ]);
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    assert.match(r.stderr, /oops/);
    // media only: no kernel in dist/ to probe KVM with, so auto means TCG
    assert.match(r.stderr, /accel: tcg \(no kernel artifact to probe KVM with/);
  });

  test('kjx run --artifact qcow2 --firmware uefi: the disk is left as built', () => {
    const disk = join(ws, 'dist', 'kjx.qcow2');
    const before = readFileSync(disk);
    const r = kjx([
      'run',
      '--artifact',
      'qcow2',
      '--firmware',
      'uefi',
      '--accel',
      'tcg',
      '--',
      'sh',
      '-c',
      'grep " / " /proc/mounts; [ -d /sys/firmware/efi ] && echo efi; echo x >/written',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\S+ \/ ext4 /m);
    assert.match(r.stdout, /^efi$/m);
    assert.ok(readFileSync(disk).equals(before), 'kjx run changed the disk image');
  });

  /** Boot detached, run checks through `kjx exec`, always stop and check QEMU is gone. */
  function detached(name: string, args: string[], check: (exec: (cmd: string) => string) => void): void {
    const b = kjx(['boot', '--detach', '--name', name, '--accel', 'tcg', '--json', ...args]);
    assert.equal(b.code, 0, b.stderr);
    const rec = JSON.parse(b.stdout);
    try {
      assert.ok(alive(rec.pid), 'QEMU is not running');
      const argv = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0');
      assert.ok(!argv.includes('-kernel'), `a medium boots without -kernel: ${argv.join(' ')}`);
      check((cmd) => {
        const r = kjx(['exec', name, '--', 'sh', '-c', cmd]);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
      });
    } finally {
      const s = kjx(['stop', name, '--timeout', '5']);
      assert.equal(s.code, 0, s.stderr);
      assert.ok(!alive(rec.pid), 'QEMU is still running after kjx stop');
    }
  }

  test('boot --detach --artifact qcow2: the guest runs from the ext4 root on the disk, dist/ stays as built', () => {
    const disk = join(ws, 'dist', 'kjx.qcow2');
    const built = readFileSync(disk);
    detached('disk', ['--artifact', 'qcow2'], (exec) => {
      assert.match(exec('grep " / " /proc/mounts'), /^\S+ \/ ext4 /m);
      assert.equal(exec('echo hi >/written; sync; cat /written; uname -r').split('\n')[0], 'hi');
    });
    assert.ok(readFileSync(disk).equals(built), 'kjx boot changed the built disk image');
  });

  test('boot --detach --artifact iso --firmware uefi: OVMF boots the CD', () => {
    detached('cd', ['--artifact', 'iso', '--firmware', 'uefi'], (exec) => {
      assert.match(exec('[ -d /sys/firmware/efi ] && echo efi || echo no-efi'), /^efi$/m);
    });
  });
});
