/**
 * The toolchain's versions, part of a built kernel's cache key: a compiler upgrade
 * rebuilds the kernel. Asking each tool (`gcc --version`, ...) costs four processes,
 * ~50 ms on every command of a spec with a built kernel, so the answers are kept in
 * the cache with the stamps of the files they came from (util/file-stamp.ts): an
 * upgrade replaces the file, a switched alternative resolves to another one, and
 * either asks again.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCache } from '../sources/cache.js';
import { writeFileAtomic } from '../util/atomic.js';
import { fileStamp } from '../util/file-stamp.js';

/** The compilers and tools whose versions are part of a kernel's cache key. */
const TOOLCHAIN = [
  ['gcc', '--version'],
  ['ld', '--version'],
  ['pahole', '--version'],
  ['make', '--version'],
] as const;

/** Where each tool resolves on PATH, with the stamp of the file it is. */
function toolchainStamps(): string {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  return TOOLCHAIN.map(([cmd]) => {
    for (const d of dirs) {
      const path = join(d, cmd);
      try {
        accessSync(path, constants.X_OK);
        // statSync follows the links (gcc -> gcc-12): the stamp is the program's own
        return `${cmd} ${path} ${fileStamp(path)}`;
      } catch {
        // not in this directory
      }
    }
    return `${cmd} missing`;
  }).join('\n');
}

function askToolchain(): string {
  return TOOLCHAIN.map(([cmd, arg]) => {
    const r = spawnSync(cmd, [arg], { encoding: 'utf8', timeout: 10_000 });
    return `${cmd}: ${(r.stdout ?? '').split('\n')[0]?.trim() || 'missing'}`;
  }).join('\n');
}

let memo: string | undefined;
/** First lines of the toolchain's `--version`, asked again only when one of its files changed. */
export function toolchainVersions(cacheRoot: string = openCache().root): string {
  memo ??= toolchainVersionsKept(join(cacheRoot, 'toolchain.json'));
  return memo;
}

/** The versions kept in `file` when the toolchain's files are those they came from, else asked (and kept). */
export function toolchainVersionsKept(file: string): string {
  const stamps = toolchainStamps();
  try {
    const kept = JSON.parse(readFileSync(file, 'utf8')) as { stamps?: unknown; versions?: unknown };
    if (kept.stamps === stamps && typeof kept.versions === 'string') return kept.versions;
  } catch {
    // none kept yet, or unreadable: asked below
  }
  const versions = askToolchain();
  try {
    writeFileAtomic(file, `${JSON.stringify({ stamps, versions })}\n`);
  } catch {
    // a read-only cache: asked again next time
  }
  return versions;
}
