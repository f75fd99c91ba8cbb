/** runit from Debian's `runit` package: the supervisor binaries, nothing of Debian's sysv glue. */
import { type Component, takeFiles } from './component.js';

export const RUNIT_FILES = [
  '/sbin/runit',
  '/usr/bin/runsv',
  '/usr/bin/runsvdir',
  '/usr/bin/sv',
  '/usr/bin/chpst',
  '/usr/bin/svlogd',
];

export const runit: Component = {
  name: 'runit',
  packages: () => ['runit'],
  assemble: (ctx) => takeFiles('runit', ctx.staged('runit'), RUNIT_FILES),
};
