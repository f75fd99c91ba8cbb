import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import {
  ROOT_MODULES,
  rootSwitchCmdline,
  rootSwitchFiles,
  rootSwitchScript,
  SWITCH_ROOT,
} from '../../src/guest/root-switch.js';

test('the kernel command line runs the script instead of /init and names the root', () => {
  assert.deepEqual(rootSwitchCmdline('0a0b0c0d-1111-4222-8333-444455556666'), [
    `rdinit=${SWITCH_ROOT}`,
    'kjx.root=UUID=0a0b0c0d-1111-4222-8333-444455556666',
  ]);
});

test('the script is valid sh, loads the PCI transport before the disk driver, and hands over to /init', () => {
  const s = rootSwitchScript();
  const syntax = spawnSync('sh', ['-n'], { input: s, encoding: 'utf8' });
  assert.equal(syntax.status, 0, syntax.stderr);
  assert.ok(ROOT_MODULES.indexOf('virtio_pci') < ROOT_MODULES.indexOf('virtio_blk'));
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

test('without kjx.root= on the command line the script only hands over to /init', () => {
  // run the first lines of the script in a shell where mount/umount are stubs and
  // /proc/cmdline is ours; it must exec /init (here: a stub that prints a word)
  const s = rootSwitchScript()
    .replace('$(cat /proc/cmdline)', '$KJX_TEST_CMDLINE')
    .replace(/exec \/init/g, 'echo HANDOVER; exit 0');
  const r = spawnSync('sh', ['-c', `mount() { :; }; umount() { :; }; ${s}`], {
    encoding: 'utf8',
    env: { KJX_TEST_CMDLINE: 'console=ttyS0 quiet', PATH: process.env.PATH ?? '' },
  });
  assert.equal(r.stdout.trim(), 'HANDOVER');
});

test('the layer puts the script in the image, executable', () => {
  const t = rootSwitchFiles();
  const e = t.get(SWITCH_ROOT);
  assert.equal(e?.type, 'file');
  assert.equal(e?.mode, 0o755);
});
