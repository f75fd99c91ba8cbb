/** dropbear from Debian's `dropbear-bin`: the server and its key generator (libraries come through the ELF closure). */
import { dataComponent } from './data.js';

export const DROPBEAR_FILES = ['/usr/sbin/dropbear', '/usr/bin/dropbearkey'];

export const dropbear = dataComponent({
  name: 'dropbear',
  take: [{ package: 'dropbear-bin', paths: DROPBEAR_FILES }],
});
