/**
 * Accounts: /etc/passwd, /etc/group, /etc/shadow, /etc/shells, home directories and
 * ~/.ssh/authorized_keys. root always exists; the spec's `users` add to it (or give
 * root keys and a shell).
 *
 * No account has a password: every shadow entry is `*` (locked: no password, and no
 * empty password, opens it), so the only ways in are SSH keys and the VM owner's
 * serial console.
 */
import { addEntry, type EntrySource, mk, newTree, type Tree } from '../rootfs/tree.js';
import type { Spec, UserSpec } from '../spec/schema.js';

/** Groups every image has, besides one per user. */
const SYSTEM_GROUPS: [string, number][] = [
  ['root', 0],
  ['tty', 5],
  ['nogroup', 65534],
];

/** root as given by the spec, or the default one. */
export function accounts(spec: Spec): UserSpec[] {
  const root: UserSpec = spec.users.find((u) => u.name === 'root') ?? {
    name: 'root',
    uid: 0,
    gid: 0,
    home: '/root',
    shell: '/bin/sh',
    authorizedKeys: [],
  };
  const nobody: UserSpec = {
    name: 'nobody',
    uid: 65534,
    gid: 65534,
    home: '/nonexistent',
    shell: '/bin/false',
    authorizedKeys: [],
  };
  const others = spec.users.filter((u) => u.name !== 'root');
  return [root, ...others, ...(others.some((u) => u.name === 'nobody') ? [] : [nobody])];
}

/** name -> uid and gid, for file owners given by name. */
export function accountIds(spec: Spec): Map<string, { uid: number; gid: number }> {
  return new Map(accounts(spec).map((u) => [u.name, { uid: u.uid, gid: u.gid }]));
}

export function passwdFile(users: UserSpec[]): string {
  return users.map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.name}:${u.home}:${u.shell}\n`).join('');
}

export function shadowFile(users: UserSpec[]): string {
  // `*`: locked. Never empty, never a hash.
  return users.map((u) => `${u.name}:*:19000:0:99999:7:::\n`).join('');
}

export function groupFile(users: UserSpec[]): string {
  const groups = new Map<number, { name: string; members: string[] }>();
  for (const [name, gid] of SYSTEM_GROUPS) groups.set(gid, { name, members: [] });
  for (const u of users) if (!groups.has(u.gid)) groups.set(u.gid, { name: u.name, members: [] });
  return [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([gid, g]) => `${g.name}:x:${gid}:${g.members.join(',')}\n`)
    .join('');
}

/** Login shells dropbear accepts (it refuses users whose shell is not listed). */
export function shellsFile(users: UserSpec[]): string {
  const shells = new Set(['/bin/sh', '/bin/ash', ...users.map((u) => u.shell)]);
  shells.delete('/bin/false');
  return [...shells].map((s) => `${s}\n`).join('');
}

/**
 * The account files and homes. `keys` maps a user name to its authorized key lines
 * (already read from the host, project key included).
 */
export function usersTree(spec: Spec, keys: ReadonlyMap<string, string[]>): Tree {
  const src: EntrySource = { kind: 'generated', by: 'kjx users' };
  const t = newTree();
  const users = accounts(spec);
  addEntry(t, mk.file('/etc/passwd', passwdFile(users), src, 0o644));
  addEntry(t, mk.file('/etc/group', groupFile(users), src, 0o644));
  addEntry(t, mk.file('/etc/shadow', shadowFile(users), src, 0o600));
  addEntry(t, mk.file('/etc/shells', shellsFile(users), src, 0o644));
  for (const u of users) {
    if (u.name === 'nobody') continue;
    const own = { uid: u.uid, gid: u.gid };
    addEntry(t, { ...mk.dir(u.home, src, 0o700), ...own });
    const lines = keys.get(u.name) ?? [];
    if (lines.length === 0) continue;
    // dropbear refuses keys in group- or world-writable places
    addEntry(t, { ...mk.dir(`${u.home}/.ssh`, src, 0o700), ...own });
    addEntry(t, {
      ...mk.file(`${u.home}/.ssh/authorized_keys`, lines.map((l) => `${l}\n`).join(''), src, 0o600),
      ...own,
    });
  }
  return t;
}
