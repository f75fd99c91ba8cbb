/**
 * A developer's kernel on the host (src/sources/dev-kernel.ts): a built tree, a tree
 * that is not built (the make line to run), a bzImage with its modules directory, and
 * the paths that are none of these. Fixtures: fake trees written by
 * test/fixtures/kernel-tree-fixtures.ts.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseModinfo } from '../../src/rootfs/modinfo.js';
import {
  devModulesSize,
  makeLine,
  openDevKernel,
  parseKernelConfig,
  readDevModules,
} from '../../src/sources/dev-kernel.js';
import { elfWithNotes, PVH_NOTE } from '../fixtures/bzimage-fixtures.js';
import { TREE_RELEASE, writeInstalledKernel, writeKernelTree } from '../fixtures/kernel-tree-fixtures.js';
import { kjxError, throwsKjx } from '../helpers/kjx-error.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'kjx-devk-'));
  dirs.push(d);
  return d;
};

describe('a built kernel tree', () => {
  test('its bzImage, release, .config and modules at their installed paths', () => {
    const dir = writeKernelTree(tmp());
    const k = openDevKernel(dir);
    assert.equal(k.kind, 'tree');
    assert.equal(k.bzImage, join(dir, 'arch/x86/boot/bzImage'));
    assert.equal(k.release, TREE_RELEASE);
    assert.equal(k.config?.get('VXLAN'), 'm');
    assert.equal(k.config?.get('LOCALVERSION'), '-kjxtest');
    assert.equal(k.config?.has('DEBUG_INFO'), false);
    assert.deepEqual(k.modules?.order, [
      'kernel/drivers/net/vxlan/vxlan.ko',
      'kernel/net/ipv4/udp_tunnel.ko',
      'kernel/net/ipv6/ip6_udp_tunnel.ko',
      'kernel/net/netfilter/ipvs/ip_vs.ko',
    ]);
    assert.equal(k.modules?.files.get('kernel/net/ipv4/udp_tunnel.ko'), join(dir, 'net/ipv4/udp_tunnel.ko'));
    assert.match(k.modules?.builtin?.toString() ?? '', /qemu_fw_cfg\.ko/);
    assert.ok(devModulesSize(k.modules!) > 0);
  });

  test('modules.order naming objects (Linux 6.2 and later) reads the same', () => {
    const k = openDevKernel(writeKernelTree(tmp(), { orderObjects: true }));
    assert.equal(k.modules?.order[0], 'kernel/drivers/net/vxlan/vxlan.ko');
    assert.equal(k.modules?.files.size, 4);
  });

  test('a relative path is taken from the working directory and made absolute', () => {
    const dir = writeKernelTree(tmp());
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      assert.equal(openDevKernel('.').path, dir);
    } finally {
      process.chdir(cwd);
    }
  });

  test('without CONFIG_MODULES there are no modules to look for', () => {
    const dir = writeKernelTree(tmp(), { config: ['CONFIG_BLK_DEV_INITRD=y'] });
    rmSync(join(dir, 'modules.order'));
    assert.equal(openDevKernel(dir).modules, undefined);
  });
});

describe('a tree that is not built says so, with the make line', () => {
  test('configured, no bzImage: the make line for bzImage and modules', () => {
    const dir = writeKernelTree(tmp(), { built: false });
    assert.throws(
      () => openDevKernel(dir),
      kjxError('KERNEL_INVALID', {
        message: `--kernel ${dir}: the kernel tree is not built (no arch/x86/boot/bzImage)`,
        hint: `build it first: make -C ${dir} -j$(nproc) bzImage modules`,
        reason: 'not-built',
      }),
    );
  });

  test('a source tree never configured (the source of an O= build): configure, or give the O= directory', () => {
    const dir = writeKernelTree(tmp(), { built: false });
    rmSync(join(dir, '.config'));
    assert.throws(
      () => openDevKernel(dir),
      kjxError('KERNEL_INVALID', {
        hint: /defconfig && make -C .* bzImage modules\); if you built it out of tree \(make O=DIR\), give --kernel DIR/,
      }),
    );
  });

  test('bzImage built, modules not: the make line for modules', () => {
    const dir = writeKernelTree(tmp());
    rmSync(join(dir, 'modules.order'));
    assert.throws(
      () => openDevKernel(dir),
      kjxError('KERNEL_INVALID', { message: /no modules\.order/, hint: /-j\$\(nproc\) modules$/ }),
    );
    const dir2 = writeKernelTree(tmp());
    rmSync(join(dir2, 'net/ipv4/udp_tunnel.ko'));
    assert.throws(
      () => openDevKernel(dir2),
      kjxError('KERNEL_INVALID', {
        message: /modules\.order names net\/ipv4\/udp_tunnel\.ko, which is not built/,
      }),
    );
  });

  test('configured again since its build (another release): build it again', () => {
    const dir = writeKernelTree(tmp(), { bzImageRelease: '6.1.191' });
    assert.throws(
      () => openDevKernel(dir),
      kjxError('KERNEL_INVALID', {
        message: /is release 6\.1\.191, but the tree is configured for 6\.1\.192-kjxtest/,
        hint: /build it again: make -C/,
      }),
    );
  });

  test('a path with spaces is quoted in the make line', () => {
    assert.equal(makeLine('/src/my linux'), "make -C '/src/my linux' -j$(nproc) bzImage modules");
  });
});

describe('paths that are not a kernel', () => {
  test('a missing path', () => {
    assert.throws(
      () => openDevKernel('/nonexistent/linux'),
      kjxError('INPUT_NOT_FOUND', { message: '--kernel /nonexistent/linux: no such file or directory' }),
    );
  });

  test('a directory that is no kernel tree', () => {
    const d = tmp();
    assert.throws(() => openDevKernel(d), kjxError('KERNEL_INVALID', { reason: 'not-a-kernel' }));
  });

  test('a file that is not a bzImage; an ELF vmlinux is named as such', () => {
    const d = tmp();
    writeFileSync(join(d, 'notes.txt'), 'hello\n');
    assert.throws(
      () => openDevKernel(join(d, 'notes.txt')),
      kjxError('KERNEL_INVALID', {
        message: /not an x86 bzImage \(no bzImage setup header/,
        reason: 'not-bzimage',
      }),
    );
    writeFileSync(join(d, 'vmlinux'), elfWithNotes([PVH_NOTE]));
    assert.throws(
      () => openDevKernel(join(d, 'vmlinux')),
      kjxError('KERNEL_INVALID', { hint: /ELF file \(vmlinux\?\)/ }),
    );
  });

  test('security: modules.order cannot name a file outside the tree', () => {
    const dir = writeKernelTree(tmp());
    writeFileSync(join(dir, 'modules.order'), '../../../etc/shadow.ko\n');
    assert.throws(() => openDevKernel(dir), kjxError('KERNEL_INVALID', /outside the tree/));
  });
});

describe('a bzImage with --modules', () => {
  test('the release comes from the bzImage header; the modules from lib/modules/<release>, links not followed', () => {
    const { bzImage, modules } = writeInstalledKernel(tmp());
    const k = openDevKernel(bzImage, modules);
    assert.equal(k.kind, 'image');
    assert.equal(k.release, TREE_RELEASE);
    assert.equal(k.config, undefined);
    assert.deepEqual([...k.modules!.files.keys()].sort(), [
      'kernel/drivers/net/vxlan/vxlan.ko',
      'kernel/net/ipv4/udp_tunnel.ko',
      'kernel/net/ipv6/ip6_udp_tunnel.ko',
      'kernel/net/netfilter/ipvs/ip_vs.ko',
    ]);
  });

  test('without --modules: no modules', () => {
    const { bzImage } = writeInstalledKernel(tmp());
    const k = openDevKernel(bzImage);
    assert.equal(k.release, TREE_RELEASE);
    assert.equal(k.modules, undefined);
  });

  test('a modules directory of another release is refused, naming both (and the right one when it is near)', () => {
    const d = tmp();
    const { bzImage } = writeInstalledKernel(d);
    const other = join(d, 'lib', 'modules', '6.1.99');
    mkdirSync(other);
    throwsKjx(() => openDevKernel(bzImage, other), 'KERNEL_INVALID', {
      message: `--modules ${other}: modules of release 6.1.99, but --kernel ${bzImage} is release ${TREE_RELEASE}`,
      hint: `did you mean --modules ${join(d, 'lib', 'modules', TREE_RELEASE)}?`,
      reason: 'release-mismatch',
    });
    // INSTALL_MOD_PATH given instead of lib/modules/<release>
    assert.throws(
      () => openDevKernel(bzImage, d),
      kjxError('KERNEL_INVALID', {
        hint: `did you mean --modules ${join(d, 'lib', 'modules', TREE_RELEASE)}?`,
      }),
    );
  });

  test('a missing or empty modules directory', () => {
    const d = tmp();
    const { bzImage } = writeInstalledKernel(d);
    assert.throws(() => openDevKernel(bzImage, join(d, 'nope', TREE_RELEASE)), kjxError('INPUT_NOT_FOUND'));
    const empty = join(d, 'empty', TREE_RELEASE);
    mkdirSync(empty, { recursive: true });
    assert.throws(() => openDevKernel(bzImage, empty), kjxError('KERNEL_INVALID', /holds no kernel modules/));
  });

  test('--modules with a tree is a usage error (the tree has its modules)', () => {
    const { modules } = writeInstalledKernel(tmp());
    assert.throws(
      () => openDevKernel(writeKernelTree(tmp()), modules),
      kjxError('USAGE', /is a kernel tree/),
    );
  });
});

describe('reading the modules', () => {
  test('all of them, or only what the names need (depends followed, nothing else read)', () => {
    const k = openDevKernel(writeKernelTree(tmp()));
    const dir = `/lib/modules/${TREE_RELEASE}`;
    const all = readDevModules(k.modules!, k.release, 'all');
    assert.deepEqual([...all.keys()].filter((p) => p.endsWith('.ko')).sort(), [
      `${dir}/kernel/drivers/net/vxlan/vxlan.ko`,
      `${dir}/kernel/net/ipv4/udp_tunnel.ko`,
      `${dir}/kernel/net/ipv6/ip6_udp_tunnel.ko`,
      `${dir}/kernel/net/netfilter/ipvs/ip_vs.ko`,
    ]);
    const some = readDevModules(k.modules!, k.release, ['vxlan', 'virtio_net', 'nosuch']);
    assert.deepEqual([...some.keys()].filter((p) => p.endsWith('.ko')).sort(), [
      `${dir}/kernel/drivers/net/vxlan/vxlan.ko`,
      `${dir}/kernel/net/ipv4/udp_tunnel.ko`,
      `${dir}/kernel/net/ipv6/ip6_udp_tunnel.ko`,
    ]);
    const entry = some.get(`${dir}/kernel/drivers/net/vxlan/vxlan.ko`);
    assert.equal(entry?.type, 'file');
    if (entry?.type === 'file') assert.equal(parseModinfo(entry.data, 'vxlan').name, 'vxlan');
    for (const f of ['modules.order', 'modules.builtin']) assert.ok(some.has(`${dir}/${f}`), f);
  });

  test('.config lines: values without quotes, unset options absent', () => {
    const c = parseKernelConfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n\nCONFIG_D=0x10\n');
    assert.deepEqual(
      [...c],
      [
        ['A', 'y'],
        ['C', 'x y'],
        ['D', '0x10'],
      ],
    );
  });
});
