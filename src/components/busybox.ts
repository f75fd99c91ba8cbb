/**
 * busybox: `/bin/busybox` plus one symlink per applet. The applet list is read from
 * the binary itself (it is never run on the host).
 *
 * Two flavours: `busybox` takes Debian's dynamically linked build (0.8 MB; it
 * shares the C library that runit and dropbear need anyway), `busybox-static`
 * the static one (2.0 MB, for images without libc).
 */
import { addEntry, type FileEntry, mk } from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';
import { busyboxApplets } from './busybox-applets.js';
import { type Component, takeFiles } from './component.js';

/** Applets that must not shadow what kjx provides itself (our /init, the binary's own name). */
const SKIPPED = new Set(['init', 'linuxrc', 'busybox']);

/**
 * Applets scripts expect under /sbin as well. Not modprobe: the kernel runs /sbin/modprobe
 * for every module it asks for while booting (a process start each, slow under TCG,
 * and useless before stage 1 loads the image's modules); stage 1 points
 * /proc/sys/kernel/modprobe at /bin/modprobe once the system is up.
 */
const ALSO_IN_SBIN = [
  'insmod',
  'rmmod',
  'lsmod',
  'depmod',
  'mdev',
  'switch_root',
  'poweroff',
  'reboot',
  'halt',
];

function busyboxFrom(name: string, pkg: string, other: string): Component {
  return {
    name,
    packages: () => [pkg],
    // both ship /bin/busybox; one image has one
    excludes: [other],
    provides: ['shell'],
    assemble(ctx) {
      const out = takeFiles(pkg, ctx.staged(pkg), ['/bin/busybox']);
      const bin = out.get('/bin/busybox');
      if (bin?.type !== 'file') throw new KjxError('TREE_INVALID', `${pkg} has no regular file /bin/busybox`);
      const source = { kind: 'generated', by: 'busybox applets' } as const;
      const applets = busyboxApplets((bin as FileEntry).data).filter(
        (a) => !SKIPPED.has(a) && /^[a-z0-9_.[-]+$/.test(a),
      );
      for (const a of applets) addEntry(out, mk.symlink(`/bin/${a}`, 'busybox', source));
      for (const a of ALSO_IN_SBIN)
        if (applets.includes(a)) addEntry(out, mk.symlink(`/sbin/${a}`, '../bin/busybox', source));
      addEntry(out, mk.dir('/sbin', source));
      return out;
    },
  };
}

export const busybox = busyboxFrom('busybox', 'busybox', 'busybox-static');
export const busyboxStatic = busyboxFrom('busybox-static', 'busybox-static', 'busybox');
