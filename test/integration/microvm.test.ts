/**
 * `--machine microvm` on Debian's packaged kernel (docs/boot-time.md): refused before
 * any QEMU when the image lacks virtio_mmio, booted with it in `kernel.modules`, the
 * host's TSC rate on the command line. The kernel kjx builds on microvm, 50 boots in a
 * row, is in kernel-build.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeAll, runKjx, workspace } from '../helpers/kjx.js';

describe('--machine microvm on the packaged kernel', () => {
  let ws: string;
  const spec = () => join(ws, 'kjx.yaml');
  const run = (args: string[]) =>
    runKjx(['run', '--machine', 'microvm', '--accel', 'tcg', '--cold', '--no-save', ...args], {
      cwd: ws,
      timeoutMs: 300_000,
    });

  before(() => {
    ws = workspace('microvm');
  });
  after(() => removeAll(ws));

  test('without virtio_mmio in kernel.modules: a usage error naming the fix, before any QEMU', () => {
    const r = run(['--timing', '--', 'true']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--machine microvm: the image's kernel \(.*cloud-amd64\) has no virtio_mmio/);
    assert.match(r.stderr, new RegExp(`hint: add virtio_mmio to kernel.modules in ${spec()}`));
    assert.doesNotMatch(r.stderr, /boot phases/);
  });

  test('a medium or OVMF with microvm: a usage error', () => {
    for (const args of [
      ['--artifact', 'iso'],
      ['--firmware', 'uefi'],
    ]) {
      const r = run([...args, '--', 'true']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--machine microvm with --/, args.join(' '));
    }
  });

  test('with virtio_mmio: it boots on virtio-mmio, the kernel told the TSC rate', () => {
    const text = readFileSync(spec(), 'utf8');
    assert.match(text, /^ {4}- vmw_vsock_virtio_transport$/m);
    writeFileSync(spec(), text.replace(/^( {4}- vmw_vsock_virtio_transport)$/m, '$1\n    - virtio_mmio'));
    const r = run(['--', 'sh', '-c', 'readlink -f /sys/bus/virtio/devices/virtio0; cat /proc/cmdline']);
    assert.equal(r.code, 0, r.stderr);
    const [device, cmdline] = r.stdout.trim().split('\n');
    assert.match(device ?? '', /^\/sys\/devices\/platform\/LNRO0005:\d+\/virtio0$/);
    assert.match(cmdline ?? '', /(^| )tsc_early_khz=\d{6,8}( |$)/);
  });
});
