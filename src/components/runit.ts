/** runit from Debian's `runit` package: the supervisor binaries, nothing of Debian's sysv glue. */
import { dataComponent } from './data.js';

export const RUNIT_FILES = [
  '/sbin/runit',
  '/usr/bin/runsv',
  '/usr/bin/runsvdir',
  '/usr/bin/sv',
  '/usr/bin/chpst',
  '/usr/bin/svlogd',
];

export const runit = dataComponent({
  name: 'runit',
  take: [{ package: 'runit', paths: RUNIT_FILES }],
  provides: ['init'],
});
