/**
 * Part of `npm run build`: tsc compiles src/ to build/ but copies nothing else, so
 * the guest shell kept as `.sh` files beside the modules that read them (through
 * `new URL('./x.sh', import.meta.url)`) is copied to the same place under build/.
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const out = join(root, 'build');

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.sh') ? [join(dir, e.name)] : [],
  );
}

for (const f of walk(src)) {
  const to = join(out, relative(src, f));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(f, to);
}
