/**
 * runc from Debian's `runc` (1.1): the OCI reference runtime. Library closure
 * (libseccomp2) comes from the ELF files. Its check runs the busybox bundle
 * (container-common.ts) with `runc run`.
 */
import { mergeTrees, type Tree } from '../rootfs/tree.js';
import { type Component, takeFiles } from './component.js';
import { CHECK_BUSYBOX_PACKAGE, checkEntry, checkRootfs } from './container-common.js';

/** A low-level runtime's check: a bundle in /tmp over the read-only check root, run in the foreground. */
export function lowLevelCheck(name: string, run: string): Tree {
  return checkEntry(name, [
    `kjx_dir=/tmp/kjx-check-${name}`,
    'rm -rf "$kjx_dir"',
    'kjx_bundle "$kjx_dir"',
    `kjx_expect ${run} "$kjx_dir" kjx-check-${name}-$$`,
  ]);
}

export const runc: Component = {
  name: 'runc',
  packages: () => ['runc', CHECK_BUSYBOX_PACKAGE],
  assemble: (ctx) =>
    mergeTrees([
      takeFiles('runc', ctx.staged('runc'), ['/usr/sbin/runc']),
      checkRootfs(ctx),
      lowLevelCheck('runc', 'runc run --bundle'),
    ]),
  pivotRoot: true,
  memoryMiB: 1024,
};
