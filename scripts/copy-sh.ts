/**
 * Part of `npm run build`: copies the guest's shell files (src/**\/sh/*.sh) and
 * the kernel profiles (src/kernel/profiles/*.config) into build/ (or the directory given) beside the compiled modules, which read them at
 * run time; tsc copies only what it compiles. Each is written to a temporary name
 * and renamed, like everything kjx writes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../src/util/atomic.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const out = process.argv[2] ?? join(root, 'build');

function shFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? shFiles(join(dir, e.name)) : /\.(sh|config)$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

const files = shFiles(src);
for (const f of files) writeFileAtomic(join(out, relative(src, f)), readFileSync(f));
console.log(`copied ${files.length} shell and kernel profile files into ${relative(root, out)}/`);
