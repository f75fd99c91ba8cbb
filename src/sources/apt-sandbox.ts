/**
 * Where `apt-get download` may write when kjx runs as root.
 *
 * As root, apt runs its download methods (http, https, file, ...) as the sandbox
 * user, `APT::Sandbox::User` (apt.conf(5); `_apt` by default), so a bug in a
 * method that parses what a mirror sends does not run as root. Before it starts
 * them, apt checks that this user can create a file in the directory the download
 * goes to (pkgAcquire::Run in apt-pkg/acquire.cc); when it cannot, apt prints "W:
 * Download is performed unsandboxed as root" and runs the methods as root.
 *
 * So as root kjx downloads into a fresh directory owned by the sandbox user, below
 * directories that user may traverse (the cache when it is reachable, else the
 * temporary directory), and reads the files back as regular files of the size the
 * index gave (apt.ts readDownloaded). Not as root, apt drops nothing and the
 * cache's own temporary directory is used.
 */
import { chownSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { run } from '../util/exec.js';
import { type Cache, cacheTempDir } from './cache.js';

export interface SandboxUser {
  name: string;
  uid: number;
  gid: number;
}

/** The user apt's methods run as when we are root; undefined when apt drops nothing. */
export async function aptSandboxUser(): Promise<SandboxUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const conf = await run('asking apt for its sandbox user', 'apt-config', [
    'shell',
    'U',
    'APT::Sandbox::User',
  ]);
  const name = /^U='([^']*)'$/m.exec(conf.stdout)?.[1] ?? '_apt';
  if (name === '' || name === 'root') return undefined;
  // apt itself warns and drops nothing when the user does not exist
  const pw = await run('looking up the apt sandbox user', 'getent', ['passwd', name], { okCodes: [2] });
  const fields = pw.stdout.trim().split(':');
  if (pw.exitCode !== 0 || fields.length < 4) return undefined;
  return { name, uid: Number(fields[2]), gid: Number(fields[3]) };
}

/** Can `user` reach entries of `dir` (search permission on it and every directory above)? */
export function traversableBy(dir: string, user: SandboxUser): boolean {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const st = statSync(d);
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

/**
 * A fresh private directory for one `apt-get download` call: owned by the sandbox
 * user when there is one (so apt keeps its methods unprivileged), else in the cache.
 */
export async function aptDownloadDir(cache: Cache): Promise<string> {
  const user = await aptSandboxUser();
  if (!user) return cacheTempDir(cache, 'download');
  const base = [join(cache.root, 'tmp'), tmpdir()].find((d) => traversableBy(d, user));
  // nowhere reachable: apt warns and downloads as root, and the warning reaches the user
  if (!base) return cacheTempDir(cache, 'download');
  const dir = mkdtempSync(join(base, `kjx-download-${process.pid}-`));
  chownSync(dir, user.uid, user.gid);
  return dir;
}
