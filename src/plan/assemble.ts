/**
 * Assemble the base tree of an image from downloaded packages: each part (a
 * component's files, in the plan's order) takes what it wants from the staged
 * packages, packages taken whole (`packages:` entries, component files') add
 * theirs, then the ELF shared-library closure pulls in every library those
 * binaries need, from the staged packages only.
 */
import { addLibraryClosure } from '../rootfs/lib-closure.js';
import { addEntry, ensureParents, newTree, type Tree } from '../rootfs/tree.js';
import type { ResolvedPackage } from '../sources/apt.js';
import { readDeb } from '../sources/deb.js';
import { stageDeb } from '../sources/stage.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import { globToRegExp, matchesAny } from '../util/glob.js';

/** What `packages:` entries leave out unless their `paths` ask for it. */
export const DOC_PATHS = [
  '/usr/share/doc/**',
  '/usr/share/man/**',
  '/usr/share/info/**',
  '/usr/share/lintian/**',
  '/usr/share/locale/**',
].map(globToRegExp);

export interface DebInput {
  name: string;
  version: string;
  data: Buffer;
  /** Taken whole or by globs (`packages:`, component files), as opposed to by a component's paths or as a dependency. */
  whole?: { paths?: string[] };
}

/** Read and stage .debs on first use only: most dependencies are needed just for their libraries. */
export function stager(debs: DebInput[]): (name: string) => Promise<Tree> {
  const memo = new Map<string, Promise<Tree>>();
  const byName = new Map(debs.map((d) => [d.name, d]));
  return (name) => {
    let t = memo.get(name);
    if (!t) {
      const d = byName.get(name);
      if (!d) throw new KjxError('INTERNAL', `package ${name} was not planned`);
      t = (async () =>
        stageDeb((await readDeb(d.data, `${d.name}_${d.version}.deb`)).dataEntries, {
          name: d.name,
          version: d.version,
        }))();
      memo.set(name, t);
    }
    return t;
  };
}

/** One part of the base tree, made from the staged packages (a component's `assemble`). */
export type BasePart = (staged: (pkg: string) => Tree) => Tree;

export async function assembleBase(
  parts: readonly BasePart[],
  debs: DebInput[],
  warn: WarnFn,
): Promise<Tree> {
  const stage = stager(debs);
  const staged = new Map<string, Tree>();
  for (const d of debs) staged.set(d.name, await stage(d.name));
  const lookup = (pkg: string): Tree => {
    const t = staged.get(pkg);
    if (!t) throw new KjxError('INTERNAL', `package ${pkg} was not planned`);
    return t;
  };
  const image = newTree();
  for (const part of parts) for (const e of part(lookup).values()) addEntry(image, e);
  for (const d of debs) {
    if (!d.whole) continue;
    const want = d.whole.paths?.map(globToRegExp);
    for (const e of staged.get(d.name)!.values()) {
      if (e.path === '/') continue;
      if (want ? !matchesAny(e.path, want) : matchesAny(e.path, DOC_PATHS)) continue;
      addEntry(image, e);
    }
  }
  // the staging area: every downloaded package, first one wins where two ship a path
  const staging = newTree();
  for (const t of staged.values())
    for (const e of t.values()) if (!staging.has(e.path)) staging.set(e.path, e);
  addLibraryClosure(image, staging, { warn });
  ensureParents(image);
  return image;
}

export type { ResolvedPackage };
