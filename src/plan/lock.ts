/**
 * `kjx.lock`: the exact Debian package versions and sha256 sums a spec resolved to.
 * A build with a lock whose roots match the spec asks apt nothing; `--update-lock`
 * (or a changed list of roots) resolves again, preferring the locked versions.
 *
 * The file is JSON with sorted keys, so it diffs well and is byte-stable. Its check
 * (zod and Debian's grammar) is lock-check.ts, loaded only for bytes not seen before.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ResolvedPackage } from '../sources/apt.js';
import { writeFileAtomic } from '../util/atomic.js';
import { stableStringify } from '../util/hash.js';
import type { KnownValid } from '../util/known-valid.js';
import type { Lock } from './lock-check.js';

export type { Lock };

export function lockFromResolved(
  roots: string[],
  kernelRoot: string | null,
  packages: ResolvedPackage[],
  kernel: ResolvedPackage | null,
  boot: { roots: string[]; packages: ResolvedPackage[] } = { roots: [], packages: [] },
): Lock {
  const entry = (p: ResolvedPackage) => ({
    version: p.version,
    arch: p.arch,
    sha256: p.sha256,
    size: p.size,
    filename: p.filename,
    root: p.root,
    depends: p.depends,
  });
  const lock: Lock = {
    lockVersion: 1,
    roots: [...roots].sort(),
    kernelRoot,
    packages: Object.fromEntries(packages.map((p) => [p.name, entry(p)])),
    kernel: kernel ? { name: kernel.name, ...entry(kernel) } : null,
  };
  // only locks of specs with media outputs carry the keys, so older locks stay byte-identical
  if (boot.roots.length > 0) {
    lock.bootRoots = [...boot.roots].sort();
    lock.boot = Object.fromEntries(boot.packages.map((p) => [p.name, entry(p)]));
  }
  return lock;
}

export function lockedBootPackages(lock: Lock): ResolvedPackage[] {
  return Object.entries(lock.boot ?? {}).map(([name, p]) => ({ name, ...p, provides: [] }));
}

export function lockedPackages(lock: Lock): ResolvedPackage[] {
  return Object.entries(lock.packages).map(([name, p]) => ({ name, ...p, provides: [] }));
}

/**
 * Read kjx.lock, or undefined when there is none. Bytes that `known` says passed the
 * check before (by this kjx) are taken as they are; any others are checked
 * (lock-check.ts), and remembered when they passed and are as kjx writes them.
 * @throws KjxError LOCK_INVALID naming file:line:col of each problem
 */
export async function loadLock(path: string, known?: KnownValid): Promise<Lock | undefined> {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  if (known?.has(text)) return JSON.parse(text) as Lock;
  const { parseLock } = await import('./lock-check.js');
  const lock = parseLock(text, path);
  if (text === lockText(lock)) known?.add(text);
  return lock;
}

/** The text writeLock writes for `lock`: sorted keys, two spaces, a final newline. */
export function lockText(lock: unknown): string {
  return `${JSON.stringify(JSON.parse(stableStringify(lock)), null, 2)}\n`;
}

export function writeLock(path: string, lock: Lock): void {
  writeFileAtomic(path, lockText(lock));
}

/** Does the lock answer for these roots? */
export function lockMatches(
  lock: Lock,
  roots: string[],
  kernelRoot: string | null,
  bootRoots: string[] = [],
): boolean {
  const same = (x: string[], y: string[]) => {
    const a = [...x].sort();
    return a.length === y.length && a.every((r, i) => r === y[i]);
  };
  return lock.kernelRoot === kernelRoot && same(roots, lock.roots) && same(bootRoots, lock.bootRoots ?? []);
}
