/** dropbear from Debian's `dropbear-bin`: the server and its key generator (libraries come through the ELF closure). */
import { type Component, takeFiles } from './component.js';

export const DROPBEAR_FILES = ['/usr/sbin/dropbear', '/usr/bin/dropbearkey'];

export const dropbear: Component = {
  name: 'dropbear',
  packages: () => ['dropbear-bin'],
  assemble: (ctx) => takeFiles('dropbear-bin', ctx.staged('dropbear-bin'), DROPBEAR_FILES),
};
