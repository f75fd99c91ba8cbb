/**
 * `kjx.lock`: the exact Debian package versions and sha256 sums a spec resolved to.
 * A build with a lock whose roots match the spec asks apt nothing; `--update-lock`
 * (or a changed list of roots) resolves again, preferring the locked versions.
 *
 * The file is JSON with sorted keys, so it diffs well and is byte-stable.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import type { ResolvedPackage } from '../sources/apt.js';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import { stableStringify } from '../util/hash.js';

const lockedPackage = z
  .object({
    version: z.string(),
    arch: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    size: z.number().int().nonnegative(),
    filename: z.string(),
    root: z.boolean(),
    depends: z.array(z.array(z.string())),
  })
  .strict();

const lockSchema = z
  .object({
    lockVersion: z.literal(1),
    /** The root names the spec and its components asked for, sorted. */
    roots: z.array(z.string()),
    kernelRoot: z.string().nullable(),
    packages: z.record(z.string(), lockedPackage),
    kernel: z.object({ name: z.string() }).extend(lockedPackage.shape).nullable(),
    /** Boot loader packages media outputs need (their files go into the ISO or disk, not the guest). */
    bootRoots: z.array(z.string()).optional(),
    boot: z.record(z.string(), lockedPackage).optional(),
  })
  .strict();

export type Lock = z.infer<typeof lockSchema>;

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

export function readLock(path: string): Lock | undefined {
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new KjxError('LOCK_INVALID', `${path}: not valid JSON (${(e as Error).message})`, {
      hint: 'delete it or run `kjx build --update-lock` to write a new one',
    });
  }
  const r = lockSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new KjxError('LOCK_INVALID', `${path}: ${i.path.join('.') || '(top)'}: ${i.message}`, {
      hint: 'delete it or run `kjx build --update-lock` to write a new one',
    });
  }
  return r.data;
}

export function writeLock(path: string, lock: Lock): void {
  writeFileAtomic(path, `${JSON.stringify(JSON.parse(stableStringify(lock)), null, 2)}\n`);
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
