/**
 * Booting a developer's kernel with the image as built (src/vm/dev-kernel.ts): the
 * modules archive after the image's initramfs, the joined file in the cache, and the
 * snapshot key, which must follow the kernel and initramfs actually booted. Fake
 * kernels from test/fixtures/kernel-tree-fixtures.ts; no VM starts here (the boot of a
 * real kernel is test/integration/dev-kernel.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { readCpio, writeCpio } from '../../src/image/cpio.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import { addEntry, ensureParents, mk, newTree } from '../../src/rootfs/tree.js';
import { openCache } from '../../src/sources/cache.js';
import { openDevKernel } from '../../src/sources/dev-kernel.js';
import { decompressAny } from '../../src/util/compression.js';
import type { Warning } from '../../src/util/errors.js';
import { sha256 } from '../../src/util/hash.js';
import {
  type DevKernelImage,
  devKernelBoot,
  devKernelOverlay,
  joinedInitrd,
  OVERLAYS_KEPT,
} from '../../src/vm/dev-kernel.js';
import { bootArtifacts } from '../../src/vm/launch.js';
import type { Prepared } from '../../src/vm/prepare.js';
import { snapshotKey } from '../../src/vm/snapshots.js';
import { TREE_RELEASE, writeInstalledKernel, writeKernelTree } from '../fixtures/kernel-tree-fixtures.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'kjx-devkvm-'));
  dirs.push(d);
  return d;
};

const MD = `lib/modules/${TREE_RELEASE}`;

/** A small image: its initramfs (gzip) in `dir`, and what the overlay needs of it. */
function image(dir: string, wanted: DevKernelImage['modules']): DevKernelImage {
  const src = { kind: 'generated', by: 'test' } as const;
  const t = newTree();
  addEntry(t, mk.file('/init', '#!/bin/sh\n', src, 0o755));
  addEntry(t, mk.file('/etc/kjx/modules', 'virtio_net\n', src));
  addEntry(t, mk.file('/lib/modules/6.1.0-debian/kernel/virtio_net.ko', 'debian', src));
  ensureParents(t, src);
  const initrd = join(dir, 'initramfs.cpio.gz');
  writeFileSync(initrd, gzipSync(writeCpio(makeReproducible(t, 1704067200))));
  return { initrd, modules: wanted, paths: new Set(t.keys()), epoch: 1704067200 };
}

const WANTED = { required: ['virtio_net', 'qemu_fw_cfg', 'vxlan', 'nosuch'], optional: ['overlay'] };

/** name -> entry of a newc archive. */
const entries = (cpio: Buffer) => new Map(readCpio(cpio, 'overlay').map((e) => [e.name, e]));

describe('the modules archive', () => {
  test('every module of a small kernel, our modules.dep, and the load list of what the image wants', () => {
    const d = tmp();
    const k = openDevKernel(writeKernelTree(join(d, 'linux')));
    const warnings: Warning[] = [];
    const o = devKernelOverlay(k, image(d, WANTED), (w) => warnings.push(w));
    assert.equal(o.all, true);
    assert.deepEqual([...o.modules].sort(), ['ip6_udp_tunnel', 'ip_vs', 'udp_tunnel', 'vxlan']);
    // built-ins need no loading; a module comes after what it needs
    assert.deepEqual(o.load, ['ip6_udp_tunnel', 'udp_tunnel', 'vxlan']);
    const e = entries(o.cpio);
    assert.equal(e.get('etc/kjx/modules')?.data.toString(), 'ip6_udp_tunnel\nudp_tunnel\nvxlan\n');
    assert.equal(
      e.get(`${MD}/modules.dep`)?.data.toString(),
      [
        'kernel/drivers/net/vxlan/vxlan.ko: kernel/net/ipv4/udp_tunnel.ko kernel/net/ipv6/ip6_udp_tunnel.ko',
        'kernel/net/ipv4/udp_tunnel.ko:',
        'kernel/net/ipv6/ip6_udp_tunnel.ko:',
        'kernel/net/netfilter/ipvs/ip_vs.ko:',
        '',
      ].join('\n'),
    );
    for (const f of [
      'modules.builtin',
      'modules.order',
      'modules.alias',
      'kernel/net/netfilter/ipvs/ip_vs.ko',
    ])
      assert.ok(e.has(`${MD}/${f}`), f);
    // the image's directories keep their modes and owners: the archive leaves them out
    for (const dir of ['lib', 'lib/modules', 'etc', 'etc/kjx']) assert.equal(e.has(dir), false, dir);
    const md = e.get(MD);
    assert.equal(md && (md.mode & 0o170000) === 0o040000 && md.mode & 0o7777, 0o755);
    assert.equal(md?.uid, 0);
    // a required module the kernel lacks is a warning naming it; an optional one is not
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['DEV_KERNEL_MODULE_MISSING'],
    );
    assert.match(warnings[0]!.message, /loads nosuch, which the kernel 6\.1\.192-kjxtest has neither/);
  });

  test('over the size bound, only what the image loads and what that needs', () => {
    const d = tmp();
    const k = openDevKernel(writeKernelTree(join(d, 'linux')));
    const o = devKernelOverlay(k, image(d, WANTED), () => {}, 1);
    assert.equal(o.all, false);
    assert.deepEqual(o.modules, ['ip6_udp_tunnel', 'udp_tunnel', 'vxlan']);
    assert.equal(entries(o.cpio).has(`${MD}/kernel/net/netfilter/ipvs/ip_vs.ko`), false);
  });

  test('a bzImage with its modules directory: the same archive', () => {
    const d = tmp();
    const inst = writeInstalledKernel(join(d, 'inst'));
    const o = devKernelOverlay(openDevKernel(inst.bzImage, inst.modules), image(d, WANTED), () => {});
    assert.deepEqual(o.load, ['ip6_udp_tunnel', 'udp_tunnel', 'vxlan']);
    const tree = devKernelOverlay(
      openDevKernel(writeKernelTree(join(d, 'linux'))),
      image(d, WANTED),
      () => {},
    );
    assert.deepEqual(o.cpio, tree.cpio);
  });

  test('a bzImage alone: an empty load list and a warning that the modules are not loaded', () => {
    const d = tmp();
    const warnings: Warning[] = [];
    const inst = writeInstalledKernel(join(d, 'inst'));
    const o = devKernelOverlay(openDevKernel(inst.bzImage), image(d, WANTED), (w) => warnings.push(w));
    assert.deepEqual([o.modules, o.load], [[], []]);
    assert.equal(entries(o.cpio).get('etc/kjx/modules')?.data.length, 0);
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['DEV_KERNEL_NO_MODULES'],
    );
    assert.match(warnings[0]!.message, /--modules lib\/modules\/6\.1\.192-kjxtest brings the others/);
  });
});

describe('the joined initramfs in the cache', () => {
  test('the image decompressed, then the archive; made once, used again, made again when damaged', async () => {
    const d = tmp();
    const cache = openCache(join(d, 'cache'));
    const img = image(d, WANTED);
    const overlay = devKernelOverlay(openDevKernel(writeKernelTree(join(d, 'linux'))), img, () => {}).cpio;
    const first = await joinedInitrd(img, overlay, cache);
    const joined = readFileSync(first.path);
    const head = await decompressAny(readFileSync(img.initrd));
    assert.deepEqual(joined.subarray(0, head.length), head);
    assert.deepEqual(joined.subarray(joined.length - overlay.length), overlay);
    assert.equal(first.sha256, sha256(joined));
    assert.equal(statSync(first.path).mode & 0o777, 0o600);
    const ino = statSync(first.path).ino;
    assert.deepEqual(await joinedInitrd(img, overlay, cache), first);
    assert.equal(statSync(first.path).ino, ino, 'written again');
    // another archive (a rebuilt kernel) is another file
    const other = await joinedInitrd(img, Buffer.concat([overlay, Buffer.alloc(512)]), cache);
    assert.notEqual(other.path, first.path);
    // a flipped byte: never handed out, written again
    joined.writeUInt8(joined.readUInt8(10) ^ 1, 10);
    writeFileSync(first.path, joined);
    const again = await joinedInitrd(img, overlay, cache);
    assert.equal(again.sha256, first.sha256);
    assert.equal(sha256(readFileSync(again.path)), first.sha256);
  });

  test('an image that stays compressed gets the archive compressed the same way after it', async () => {
    const d = tmp();
    const cache = openCache(join(d, 'cache'));
    // not a cpio inside: directInitrd hands it over as it is (as it does a big image)
    const initrd = join(d, 'odd.gz');
    const inner = Buffer.from('not a cpio archive, but what a big image would be\n');
    writeFileSync(initrd, gzipSync(inner));
    const overlay = Buffer.from('070701 stands in for the overlay');
    const j = await joinedInitrd({ initrd }, overlay, cache);
    const joined = readFileSync(j.path);
    assert.equal(joined[0], 0x1f);
    assert.deepEqual(await decompressAny(joined), Buffer.concat([inner, overlay]));
  });

  test(`the cache keeps the ${OVERLAYS_KEPT} most recently used joined files`, async () => {
    const d = tmp();
    const cache = openCache(join(d, 'cache'));
    const img = image(d, WANTED);
    const made: string[] = [];
    for (let i = 0; i < OVERLAYS_KEPT + 3; i++)
      made.push((await joinedInitrd(img, Buffer.from(`overlay ${i}`), cache)).path);
    const left = readdirSync(join(cache.root, 'kernel-overlays')).filter((f) => f.endsWith('.cpio'));
    assert.equal(left.length, OVERLAYS_KEPT);
    assert.ok(left.includes(made.at(-1)!.split('/').pop()!));
  });
});

describe('the boot of a developer kernel', () => {
  test("the bzImage's sha256 and the joined initramfs; .config lacking what the guest needs is a warning", async () => {
    const d = tmp();
    const tree = writeKernelTree(join(d, 'linux'), {
      config: [
        'CONFIG_MODULES=y',
        'CONFIG_BLK_DEV_INITRD=y',
        'CONFIG_SERIAL_8250_CONSOLE=y',
        'CONFIG_DEVTMPFS=y',
      ],
    });
    const warnings: Warning[] = [];
    const b = await devKernelBoot(
      openDevKernel(tree),
      image(d, WANTED),
      (w) => warnings.push(w),
      openCache(join(d, 'c')),
    );
    assert.equal(b.bzImageSha256, sha256(readFileSync(join(tree, 'arch/x86/boot/bzImage'))));
    assert.equal(b.initrdSha256, sha256(readFileSync(b.initrd)));
    assert.equal(b.release, TREE_RELEASE);
    const config = warnings.filter((w) => w.code === 'DEV_KERNEL_CONFIG').map((w) => w.message);
    assert.deepEqual(
      config.map((m) => /CONFIG_(\w+) is not set/.exec(m)?.[1]),
      ['FW_CFG_SYSFS', 'VIRTIO_PCI', 'VIRTIO_CONSOLE'],
    );
    assert.match(config[0]!, /nonce over fw_cfg/);
  });

  test('regression: a snapshot key follows the kernel and initramfs booted, not the image built', async () => {
    // the key took the image's sums from the build record, so a --kernel run could
    // restore a snapshot saved with the packaged kernel (or with an older build of its own)
    const boot = (kernel: string, initrd: string): Extract<Prepared['boot'], { kind: 'direct' }> => ({
      kind: 'direct',
      kernel: '/cache/kernels/x.vmlinux',
      pvh: true,
      initrd: '/cache/kernel-overlays/y.cpio',
      cmdline: 'console=ttyS0',
      kernelSha256: kernel,
      initrdSha256: initrd,
    });
    const key = async (b: ReturnType<typeof boot>) =>
      snapshotKey({ argv: ['qemu'], artifacts: await bootArtifacts(b), qemuVersion: 'QEMU 8', accel: 'tcg' });
    const a = await key(boot('k1', 'i1'));
    assert.equal(await key(boot('k1', 'i1')), a);
    assert.notEqual(await key(boot('k2', 'i1')), a, 'another kernel at the same path');
    assert.notEqual(await key(boot('k1', 'i2')), a, 'other modules over the same image');
    // without sums, the files QEMU loads are hashed
    const d = tmp();
    writeFileSync(join(d, 'k'), 'kernel');
    writeFileSync(join(d, 'i'), 'initrd');
    const { kernelSha256: _k, initrdSha256: _i, ...bare } = boot('', '');
    assert.deepEqual(await bootArtifacts({ ...bare, kernel: join(d, 'k'), initrd: join(d, 'i') }), {
      kernel: sha256('kernel'),
      pvh: 'true',
      initrd: sha256('initrd'),
    });
  });
});
