/**
 * The skeleton every image has: FHS directories, /dev/console (the kernel opens it
 * for PID 1 before devtmpfs is mounted), /var/run into /run, and the module load
 * list stage 1 reads. Users, identity, stages and services come from their own
 * modules; `system.ts` puts them together.
 */
import { addEntry, type EntrySource, mk, newTree, type Tree } from '../rootfs/tree.js';
import { MODULES_LIST } from './layout.js';

export interface BaseInputs {
  /** Kernel modules in load order. */
  modules: string[];
}

export function baseFiles({ modules }: BaseInputs): Tree {
  const src: EntrySource = { kind: 'generated', by: 'kjx base' };
  const t = newTree();
  for (const d of [
    '/',
    '/bin',
    '/sbin',
    '/etc',
    '/etc/kjx',
    '/dev',
    '/proc',
    '/sys',
    '/run',
    '/var',
    '/var/log',
    '/mnt',
    '/usr',
    '/usr/bin',
    '/usr/sbin',
    '/lib',
    '/home',
  ]) {
    addEntry(t, mk.dir(d, src));
  }
  addEntry(t, mk.dir('/tmp', src, 0o1777));
  addEntry(t, mk.char('/dev/console', 5, 1, src, 0o600));
  addEntry(t, mk.symlink('/var/run', '../run', src));
  addEntry(t, mk.file(MODULES_LIST, modules.map((m) => `${m}\n`).join(''), src));
  return t;
}
