/**
 * The files every image has: directories of the FHS skeleton, users (root with a
 * locked password: no passwordless login anywhere), identity files and /dev/console.
 */
import { addEntry, type EntrySource, mk, newTree, type Tree } from '../rootfs/tree.js';
import type { Spec } from '../spec/schema.js';

export interface BaseInputs {
  spec: Spec;
  buildId: string;
  /** Kernel modules in load order. */
  modules: string[];
  banner: string;
  init: string;
}

export function baseFiles({ spec, buildId, modules, banner, init }: BaseInputs): Tree {
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
  ]) {
    addEntry(t, mk.dir(d, src));
  }
  addEntry(t, mk.dir('/tmp', src, 0o1777));
  addEntry(t, mk.dir('/root', src, 0o700));
  addEntry(t, mk.char('/dev/console', 5, 1, src, 0o600));
  addEntry(t, mk.file('/init', init, src, 0o755));
  addEntry(t, mk.file('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', src, 0o644));
  addEntry(t, mk.file('/etc/group', 'root:x:0:\ntty:x:5:\n', src, 0o644));
  // `*` is a locked password: no password (and no empty password) opens this account
  addEntry(t, mk.file('/etc/shadow', 'root:*:19000:0:99999:7:::\n', src, 0o600));
  addEntry(t, mk.file('/etc/hostname', `${spec.hostname}\n`, src));
  addEntry(
    t,
    mk.file(
      '/etc/hosts',
      `127.0.0.1\tlocalhost\n127.0.1.1\t${spec.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
      src,
    ),
  );
  addEntry(
    t,
    mk.file(
      '/etc/os-release',
      `NAME="kjx"\nID=kjx\nPRETTY_NAME="kjx ${spec.name} ${spec.version}"\nVERSION="${spec.version}"\nVERSION_ID="${spec.version}"\nIMAGE_ID="${spec.name}"\nBUILD_ID="${buildId}"\n`,
      src,
    ),
  );
  addEntry(t, mk.file('/etc/kjx/modules', modules.map((m) => `${m}\n`).join(''), src));
  addEntry(t, mk.file('/etc/kjx/banner', `${banner}\n`, src));
  addEntry(
    t,
    mk.file(
      '/etc/profile',
      'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1="\\u@\\h:\\w\\$ "\n',
      src,
    ),
  );
  return t;
}
