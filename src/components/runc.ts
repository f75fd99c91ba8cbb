/**
 * runc from Debian's `runc` (1.1): the OCI reference runtime. Library closure
 * (libseccomp2) comes from the ELF files. Its check runs the busybox bundle
 * (container-common.ts) with `runc run`.
 */
import type { Tree } from '../rootfs/tree.js';
import { CHECK_ROOT, checkEntry } from './container-common.js';
import { dataComponent } from './data.js';

/** A low-level runtime's check: a bundle in /tmp over the read-only check root, run in the foreground. */
export function lowLevelCheck(name: string, run: string): Tree {
  return checkEntry(name, [
    `kjx_dir=/tmp/kjx-check-${name}`,
    'rm -rf "$kjx_dir"',
    'kjx_bundle "$kjx_dir"',
    `kjx_expect ${run} "$kjx_dir" kjx-check-${name}-$$`,
  ]);
}

export const runc = dataComponent({
  name: 'runc',
  take: [{ package: 'runc', paths: ['/usr/sbin/runc'] }],
  with: [CHECK_ROOT],
  generated: () => lowLevelCheck('runc', 'runc run --bundle'),
  checks: ['runc'],
  pivotRoot: true,
  memoryMiB: 1024,
});
