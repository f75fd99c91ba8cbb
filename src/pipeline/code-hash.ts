/**
 * A hash of kjx's own code, part of every cache key: a changed stage function must
 * never reuse what an older one cached. The guest's shell files (`sh/*.sh`) are code too.
 */

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCache } from '../sources/cache.js';
import { writeFileAtomic } from '../util/atomic.js';
import { fileStamp } from '../util/file-stamp.js';
import { sha256 } from '../util/hash.js';

let memo: string | undefined;

/** kjx's modules and shell files under `root`, in a fixed order, by path relative to it. */
function codeFiles(root: string): { rel: string; path: string }[] {
  const out: { rel: string; path: string }[] = [];
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, name.name);
      if (name.isDirectory()) walk(p, `${rel}/${name.name}`);
      else if (/\.(ts|js|sh|config)$/.test(name.name) && !name.name.endsWith('.d.ts'))
        out.push({ rel: `${rel}/${name.name}`, path: p });
    }
  };
  walk(root, '');
  return out;
}

/**
 * The hash of kjx's modules and shell files under `root` (src/ or build/). With
 * `memoFile`, the files are read only when one of their stamps (util/file-stamp.ts)
 * changed since the hash kept there: reading all ~250 took 40 ms of every run.
 */
export function codeHashOf(root: string, memoFile?: string): string {
  const files = codeFiles(root);
  // stamps taken before the reads: a file written meanwhile shows next time
  const stamps = memoFile ? sha256(files.map((f) => `${f.rel}\0${fileStamp(f.path)}\n`).join('')) : '';
  if (memoFile) {
    try {
      const m = JSON.parse(readFileSync(memoFile, 'utf8')) as { stamps?: unknown; hash?: unknown };
      if (m.stamps === stamps && typeof m.hash === 'string') return m.hash;
    } catch {
      // none yet, or unreadable: hashed below
    }
  }
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.rel}\0`).update(readFileSync(f.path));
  const hash = h.digest('hex');
  if (memoFile)
    try {
      writeFileAtomic(memoFile, `${JSON.stringify({ root, stamps, hash })}\n`);
    } catch {
      // a read-only cache: hashed again next time
    }
  return hash;
}

export function codeHash(): string {
  // this file lives in <root>/{src,build}/pipeline/; hash every module beside it
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  memo ??= codeHashOf(root, join(openCache().root, `code-hash-${sha256(root).slice(0, 16)}.json`));
  return memo;
}
