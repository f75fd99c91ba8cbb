/**
 * crun from Debian's `crun` (1.8): the OCI runtime in C. Its libraries (libcap2,
 * libsystemd0 and what that pulls in, libyajl2) come through the ELF closure.
 */
import { CHECK_ROOT } from './container-common.js';
import { dataComponent } from './data.js';
import { lowLevelCheck } from './runc.js';

export const crun = dataComponent({
  name: 'crun',
  take: [{ package: 'crun', paths: ['/usr/bin/crun'] }],
  with: [CHECK_ROOT],
  generated: () => lowLevelCheck('crun', 'crun run --bundle'),
  checks: ['crun'],
  pivotRoot: true,
  memoryMiB: 1024,
});
