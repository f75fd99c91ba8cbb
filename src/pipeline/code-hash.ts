/**
 * A hash of kjx's own code, part of every cache key: a changed stage function must
 * never reuse what an older one cached. The guest's shell files (`sh/*.sh`) are code too.
 */

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let memo: string | undefined;

/** The hash of kjx's modules and shell files under `root` (src/ or build/). */
export function codeHashOf(root: string): string {
  const h = createHash('sha256');
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, name.name);
      if (name.isDirectory()) walk(p, `${rel}/${name.name}`);
      else if (/\.(ts|js|sh)$/.test(name.name) && !name.name.endsWith('.d.ts'))
        h.update(`${rel}/${name.name}\0`).update(readFileSync(p));
    }
  };
  walk(root, '');
  return h.digest('hex');
}

export function codeHash(): string {
  // this file lives in <root>/{src,build}/pipeline/; hash every module beside it
  memo ??= codeHashOf(dirname(dirname(fileURLToPath(import.meta.url))));
  return memo;
}
