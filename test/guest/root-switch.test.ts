/**
 * The root switch of disk images (src/guest/sh/switch-root.sh): busybox sh reads it,
 * it loads the PCI transport before the disk driver and hands over to the disk's
 * /init or, without kjx.root=, the initramfs's own.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ROOT_MODULES,
  rootSwitchCmdline,
  rootSwitchFiles,
  rootSwitchScript,
  SWITCH_ROOT,
} from '../../src/guest/root-switch.js';
import { busyboxParses, busyboxSh, needsBusybox } from '../helpers/busybox.js';

const skip = needsBusybox();

test('the kernel command line runs the script instead of /init and names the root', () => {
  assert.deepEqual(rootSwitchCmdline('0a0b0c0d-1111-4222-8333-444455556666'), [
    `rdinit=${SWITCH_ROOT}`,
    'kjx.root=UUID=0a0b0c0d-1111-4222-8333-444455556666',
  ]);
});

test('the script is busybox sh, loads the PCI transport before the disk driver, and hands over to /init', {
  skip,
}, () => {
  const s = rootSwitchScript();
  const syntax = busyboxParses(s);
  assert.ok(syntax.ok, syntax.error);
  assert.ok(ROOT_MODULES.indexOf('virtio_pci') < ROOT_MODULES.indexOf('virtio_blk'));
  assert.match(s, /^KJX_ROOT_MODULES='virtio_pci virtio_blk virtio_scsi sd_mod ext4'$/m);
  assert.match(s, /^for m in \$KJX_ROOT_MODULES; do modprobe -q "\$m"/m);
  assert.match(s, /findfs "\$root"/);
  assert.match(s, /mount -t ext4 -o rw "\$dev" \/newroot/);
  assert.match(s, /exec switch_root -c \/dev\/console \/newroot \/init\n$/);
  // every way out that is not the switch boots the initramfs's own /init
  assert.equal(s.match(/exec \/init/g)?.length, 2);
  assert.match(s, /echo "\n@@kjx:\$kjx_nonce:root status=ok dev=\$dev"/);
  assert.match(s, /echo "\n@@kjx:\$kjx_nonce:root status=failed"/);
  assert.ok(
    s.indexOf('read -r kjx_nonce') < s.indexOf('fail "no file system'),
    'the nonce before any marker',
  );
});

test('without kjx.root= on the command line the script only hands over to /init', { skip }, () => {
  // busybox sh runs the script with mount, umount and cat (of /proc/cmdline) as
  // functions; exec /init (a special builtin, no function can stand in) prints a word
  const s = rootSwitchScript().replace(/exec \/init/g, 'echo HANDOVER; exit 0');
  const stubs = 'mount() { :; }; umount() { :; }; cat() { echo "$KJX_TEST_CMDLINE"; }';
  const r = busyboxSh(['-c', `${stubs}\n${s}`], {
    encoding: 'utf8',
    env: { KJX_TEST_CMDLINE: 'console=ttyS0 quiet', PATH: process.env.PATH ?? '' },
  });
  assert.equal(r.stdout.trim(), 'HANDOVER', r.stderr);
});

test('the layer puts the script in the image, executable', () => {
  const t = rootSwitchFiles();
  const e = t.get(SWITCH_ROOT);
  assert.equal(e?.type, 'file');
  assert.equal(e?.mode, 0o755);
});
