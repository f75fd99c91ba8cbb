/**
 * crun from Debian's `crun` (1.8): the OCI runtime in C. Its libraries (libcap2,
 * libsystemd0 and what that pulls in, libyajl2) come through the ELF closure.
 */
import { mergeTrees } from '../rootfs/tree.js';
import { type Component, takeFiles } from './component.js';
import { CHECK_BUSYBOX_PACKAGE, checkRootfs } from './container-common.js';
import { lowLevelCheck } from './runc.js';

export const crun: Component = {
  name: 'crun',
  packages: () => ['crun', CHECK_BUSYBOX_PACKAGE],
  assemble: (ctx) =>
    mergeTrees([
      takeFiles('crun', ctx.staged('crun'), ['/usr/bin/crun']),
      checkRootfs(ctx),
      lowLevelCheck('crun', 'crun run --bundle'),
    ]),
  pivotRoot: true,
  memoryMiB: 1024,
};
