/**
 * Resolve a Spec's Debian packages to exact versions: from `kjx.lock` when it answers
 * for the spec's roots, otherwise through apt (preferring locked versions), writing
 * a new lock. The kernel image package is resolved without its Depends (those are
 * host-side tools like initramfs-tools, never part of the guest).
 */
import { readFileSync } from 'node:fs';
import { type AptIndex, type AptPackage, type ResolvedPackage, resolvePackages } from '../sources/apt.js';
import { outputPackages } from '../spec/outputs.js';
import type { Spec } from '../spec/schema.js';
import { imagePackages } from '../spec/values.js';
import { KjxError } from '../util/errors.js';
import { sha256 } from '../util/hash.js';
import type { KnownValid } from '../util/known-valid.js';
import { planComponents } from './components.js';
import {
  type Lock,
  loadLock,
  lockedBootPackages,
  lockedPackages,
  lockFromResolved,
  lockMatches,
  writeLock,
} from './lock.js';

/** A package whose .deb comes from the host file system, not apt. */
export interface LocalDeb {
  path: string;
  /** As written in the spec, for messages and the manifest. */
  ref: string;
  sha256: string;
}

export interface PackageSet {
  /** Everything to download: roots (files go into the image) and their dependencies. */
  packages: ResolvedPackage[];
  kernel: ResolvedPackage | null;
  /** Boot loader packages for media outputs (GRUB), without their Depends; [] otherwise. */
  boot: ResolvedPackage[];
  local: LocalDeb[];
  lockChanged: boolean;
}

/**
 * The root package names a spec asks apt for (components', `packages:`, and what
 * `images:` built by kjx are made of: their files go into the baked archive only).
 * `componentPackages` are what the components ask for (the plan has them).
 */
export function rootsOf(spec: Spec, componentPackages = planComponents(spec).packages): string[] {
  const roots = new Set<string>(componentPackages);
  for (const p of spec.packages)
    if (p.kind === 'apt') roots.add(p.version ? `${p.name}=${p.version}` : p.name);
  for (const p of imagePackages(spec.images)) roots.add(p);
  return [...roots].sort();
}

/** Packages the writers of the spec's outputs need: GRUB for BIOS and UEFI when any output boots from a medium. */
export function bootRootsOf(spec: Spec): string[] {
  return outputPackages(spec.outputs);
}

/** The package the kernel stage reads: the kernel package, or the source package a kernel is built from. */
export function kernelRootOf(spec: Spec): string | null {
  const k = spec.kernel;
  if (k.kind === 'package') return k.package;
  return k.kind === 'build' && k.source.kind === 'debian' ? k.source.package : null;
}

export function localDebsOf(spec: Spec): LocalDeb[] {
  const out: LocalDeb[] = [];
  for (const p of spec.packages) {
    if (p.kind !== 'local') continue;
    let data: Buffer;
    try {
      data = readFileSync(p.path);
    } catch {
      throw new KjxError(
        'INPUT_NOT_FOUND',
        `packages: local package ${p.pathRef} does not exist (looked at ${p.path})`,
        {
          hint: 'paths in kjx.yaml are relative to the directory of kjx.yaml',
        },
      );
    }
    out.push({ path: p.path, ref: p.pathRef, sha256: sha256(data) });
  }
  return out;
}

/** Follow a kernel meta package (linux-image-cloud-amd64) to the image package it depends on. */
async function resolveKernel(
  index: AptIndex,
  root: string,
  pinned: Map<string, string>,
): Promise<ResolvedPackage> {
  let [pkg] = await resolvePackages(index, [root], { withDepends: false, pinned });
  for (let hops = 0; hops < 4 && pkg; hops++) {
    const next = pkg.depends.flat().find((d) => /^linux-image-\d/.test(d));
    if (!next) break;
    [pkg] = await resolvePackages(index, [next], { withDepends: false, pinned });
  }
  if (!pkg) throw new KjxError('PKG_UNKNOWN', `unknown kernel package ${root}`);
  return { ...pkg, root: true };
}

export interface ResolveInputs {
  spec: Spec;
  /** What the spec's components ask for (ComponentPlan.packages). */
  componentPackages?: string[];
  lockPath: string;
  updateLock: boolean;
  index: AptIndex;
  /** Lock bytes checked before (util/known-valid.ts), taken without checking again. */
  knownLocks?: KnownValid;
}

export async function resolvePlanPackages({
  spec,
  componentPackages,
  lockPath,
  updateLock,
  index,
  knownLocks,
}: ResolveInputs): Promise<PackageSet> {
  const roots = rootsOf(spec, componentPackages);
  const kernelRoot = kernelRootOf(spec);
  const bootRoots = bootRootsOf(spec);
  const local = localDebsOf(spec);
  const lock: Lock | undefined = await loadLock(lockPath, knownLocks);
  if (lock && !updateLock && lockMatches(lock, roots, kernelRoot, bootRoots)) {
    const kernel = lock.kernel ? { ...lock.kernel, provides: [] as string[] } : null;
    return {
      packages: lockedPackages(lock),
      kernel,
      boot: lockedBootPackages(lock),
      local,
      lockChanged: false,
    };
  }
  const pinned = new Map<string, string>();
  if (lock && !updateLock) {
    for (const [name, p] of Object.entries(lock.packages)) pinned.set(name, p.version);
    if (lock.kernel) pinned.set(lock.kernel.name, lock.kernel.version);
    for (const b of lockedBootPackages(lock)) pinned.set(b.name, b.version);
  }
  const packages = await resolvePackages(index, roots, { pinned });
  const kernel = kernelRoot ? await resolveKernel(index, kernelRoot, pinned) : null;
  // the boot loaders' Depends are host tools (grub-common); only their module files are used
  const boot =
    bootRoots.length > 0 ? await resolvePackages(index, bootRoots, { withDepends: false, pinned }) : [];
  writeLock(
    lockPath,
    lockFromResolved(roots, kernelRoot, packages, kernel, { roots: bootRoots, packages: boot }),
  );
  return { packages, kernel, boot, local, lockChanged: true };
}

export type { AptPackage };
