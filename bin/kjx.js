#!/usr/bin/env node
// Runs the compiled CLI (build/, from `npm run build`) when it is up to date with
// src/; otherwise the TypeScript sources through tsx, so a checkout never runs stale code.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'build', 'cli', 'entry.js');
const srcDir = join(root, 'src');

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

const fresh = existsSync(compiled) && (!existsSync(srcDir) || statSync(compiled).mtimeMs >= newestMtime(srcDir));
if (fresh) {
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(srcDir, 'cli', 'entry.ts')).href);
}
