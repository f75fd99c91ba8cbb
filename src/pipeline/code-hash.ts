/**
 * A hash of kjx's own code, part of every cache key: a changed stage function must
 * never reuse what an older one cached.
 */

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let memo: string | undefined;

export function codeHash(): string {
  if (memo) return memo;
  // this file lives in <root>/{src,dist}/pipeline/; hash every module beside it
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const h = createHash('sha256');
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, name.name);
      if (name.isDirectory()) walk(p, `${rel}/${name.name}`);
      else if (/\.(ts|js)$/.test(name.name) && !name.name.endsWith('.d.ts'))
        h.update(`${rel}/${name.name}\0`).update(readFileSync(p));
    }
  };
  walk(root, '');
  memo = h.digest('hex');
  return memo;
}
