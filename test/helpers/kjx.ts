/**
 * Helpers for tests that run the real `kjx` command: a workspace per test, one
 * shared .deb cache (so a test run downloads each package once), and a runner
 * that returns exit code, stdout and stderr.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Session, startVm } from '../../src/vm/session.js';

export const REPO = resolve(import.meta.dirname, '..', '..');
export const KJX = join(REPO, 'bin', 'kjx.js');

/** The cache all integration tests share: packages are downloaded once per machine. */
export const SHARED_CACHE = join(REPO, '.kjx', 'test-cache');

export interface KjxResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOpts {
  cwd: string;
  env?: Record<string, string>;
  cache?: string;
  timeoutMs?: number;
  /** What kjx reads on stdin (a pipe, not a TTY); nothing when absent. */
  input?: string;
}

export function kjxEnv(o: RunOpts): NodeJS.ProcessEnv {
  return { ...process.env, CI: '1', KJX_CACHE_DIR: o.cache ?? SHARED_CACHE, ...o.env };
}

export function runKjx(args: string[], o: RunOpts): KjxResult {
  const r = spawnSync(process.execPath, [KJX, ...args], {
    cwd: o.cwd,
    env: kjxEnv(o),
    encoding: 'utf8',
    timeout: o.timeoutMs ?? 300_000,
    ...(o.input === undefined ? {} : { input: o.input }),
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Start kjx without waiting (for kill tests). */
export function spawnKjx(args: string[], o: RunOpts) {
  return spawn(process.execPath, [KJX, ...args], {
    cwd: o.cwd,
    env: kjxEnv(o),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** A fresh directory with a kjx.yaml (the default one from `kjx init` unless text is given). */
export function workspace(name: string, specText?: string): string {
  const dir = mkdtempSync(join(tmpdir(), `kjx-${name}-`));
  if (specText === undefined) {
    const r = runKjx(['init'], { cwd: dir });
    if (r.code !== 0) throw new Error(`kjx init failed: ${r.stderr}`);
  } else writeFileSync(join(dir, 'kjx.yaml'), specText);
  return dir;
}

/** A cache directory that starts with the shared cache's .deb files but no stage results. */
export function coldCacheWithDebs(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-cache-'));
  mkdirSync(join(dir, 'debs'), { recursive: true });
  const debs = join(SHARED_CACHE, 'debs');
  if (existsSync(debs)) for (const f of readdirSync(debs)) cpSync(join(debs, f), join(dir, 'debs', f));
  return dir;
}

export function removeAll(...dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/** Running, and not a zombie waiting for a reaper (the process is gone, only its entry is left). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Boot what `kjx build` wrote to `<ws>/dist` (kernel + initramfs) under TCG with the
 * console on a pipe. `net` adds user-mode networking, with SSH forwarded when a port is given.
 */
export function bootBuilt(ws: string, net?: { sshPort?: number }): Session {
  return startVm({
    accel: 'tcg',
    memoryMiB: 512,
    cpus: 1,
    kernel: join(ws, 'dist', 'vmlinuz'),
    initrd: join(ws, 'dist', 'initramfs.cpio.gz'),
    cmdline: 'console=ttyS0 quiet',
    console: { kind: 'stdio' },
    ...(net ? { net: { forwards: net.sshPort ? [{ host: net.sshPort, guest: 22 }] : [] } } : {}),
  });
}

/**
 * After a project was copied and opened to everyone (`chmod -R a+rwX`, so nobody
 * can build it): its project key goes back to 0600, owned by whoever builds next
 * (uid 65534 for nobody). kjx refuses a key that group or others may read.
 */
export function keepProjectKeyPrivate(ws: string, uid?: number): void {
  const key = join(ws, '.kjx', 'ssh', 'id_ed25519');
  if (!existsSync(key)) return;
  if (uid !== undefined) chownSync(key, uid, uid);
  chmodSync(key, 0o600);
}

/**
 * The console with this boot's marker prefix `@@kjx:<nonce>:` written as `@@kjx:`,
 * for assertions on the order of markers in the text. (Forged lines without the
 * nonce stay as they were printed, so do not use this to test forgeries.)
 */
export function consoleWithoutNonce(vm: Session): string {
  return vm.console().replaceAll(`@@kjx:${vm.nonce}:`, '@@kjx:');
}

let otherUsersKjx: string | undefined;

/**
 * A `kjx.js` that another user (nobody, for the rootless tests) can run. The checkout
 * may sit below a directory only root can enter (mktemp -d makes 0700 ones), so when
 * some ancestor is closed to others the code is linked into a world-readable copy once.
 */
export function kjxForOtherUsers(): string {
  if (otherUsersKjx) return otherUsersKjx;
  const closed = REPO.split('/')
    .map((_, i, parts) => parts.slice(0, i + 1).join('/') || '/')
    .some((dir) => (statSync(dir).mode & 0o005) !== 0o005);
  if (!closed) {
    otherUsersKjx = KJX;
    return KJX;
  }
  const copy = mkdtempSync(join(tmpdir(), 'kjx-code-'));
  chmodSync(copy, 0o755);
  for (const name of ['bin', 'src', 'build', 'package.json', 'node_modules']) {
    if (!existsSync(join(REPO, name))) continue;
    // hard links are instant and keep file modes; another file system needs a real copy
    const linked = spawnSync('cp', ['-rl', join(REPO, name), copy]);
    if (linked.status !== 0) spawnSync('cp', ['-r', join(REPO, name), copy]);
  }
  process.on('exit', () => rmSync(copy, { recursive: true, force: true }));
  otherUsersKjx = join(copy, 'bin', 'kjx.js');
  return otherUsersKjx;
}

/** The first `n` bytes of a file, as latin1 text (magic numbers, headers). */
export function firstBytes(path: string, n: number): string {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, 0);
    return b.toString('latin1');
  } finally {
    closeSync(fd);
  }
}
