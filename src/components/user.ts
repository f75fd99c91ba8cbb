/**
 * A component file (src/spec/component-file.ts) as a Component: the same shape as
 * the built-in data components, with files from the host that must still have
 * the sha256 they are pinned to when the base stage reads them, and smoke checks
 * written as shell in the file. Its cache key is the file's content (which holds
 * the pins) and the pinned sums themselves.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { CHECK_DIR } from '../guest/checks.js';
import type { GuestService } from '../guest/services.js';
import { addEntry, type EntrySource, ensureParents, mk, newTree, type Tree } from '../rootfs/tree.js';
import type { LoadedComponentFile } from '../spec/component-file.js';
import { fieldPosition, problemsError } from '../spec/positions.js';
import { formatPosition } from '../util/errors.js';
import { sha256 } from '../util/hash.js';
import type { Component } from './component.js';

/** The smoke check script: `sh -e`, so a failing step fails the check. */
export function userCheckScript(component: string, name: string, body: string): string {
  return [
    '#!/bin/sh -e',
    `# smoke check ${name} of the ${component} component: kjx test runs it, it passes when it exits 0.`,
    body.endsWith('\n') ? body.slice(0, -1) : body,
    '',
  ].join('\n');
}

/** How the manifest names a host file: relative to kjx.yaml when it lies below it. */
function inputRef(specDir: string, path: string): string {
  const rel = relative(specDir, path);
  return rel === '' || rel.startsWith('..') ? path : rel;
}

/** The files a component file puts into the image: its host files (checked again) and inline ones, its checks. */
function userFiles(c: LoadedComponentFile, specDir: string): Tree {
  const out = newTree();
  c.files.forEach((f, i) => {
    const at = fieldPosition(c.source, ['files', i]);
    const where = `${c.name} component, files[${i}]${at ? ` at ${formatPosition(at)}` : ''}`;
    if (f.kind === 'inline') {
      const source: EntrySource = { kind: 'input', ref: `${c.ref} files[${i}]`, at: where };
      addEntry(out, mk.file(f.path, f.content, source, f.mode));
      return;
    }
    let data: Buffer;
    try {
      data = readFileSync(f.from);
    } catch (e) {
      throw problemsError([
        {
          source: c.source,
          path: ['files', i, 'from'],
          message: `cannot read ${f.fromRef}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
        },
      ]);
    }
    // checked when the spec was loaded; a file changed since then is refused the same way
    const actual = sha256(data);
    if (actual !== f.sha256)
      throw problemsError([
        {
          source: c.source,
          path: ['files', i, 'sha256'],
          message: `${f.fromRef} has sha256 ${actual}, not the pinned ${f.sha256}; if it changed on purpose, pin the new sum`,
        },
      ]);
    const ref = inputRef(specDir, f.from);
    addEntry(out, mk.file(f.path, data, { kind: 'input', ref, at: `${where} (from ${ref})` }, f.mode));
  });
  const src: EntrySource = { kind: 'generated', by: `${c.name} component` };
  for (const [name, body] of Object.entries(c.checks))
    addEntry(out, mk.file(`${CHECK_DIR}/${name}`, userCheckScript(c.name, name, body), src, 0o755));
  ensureParents(out, src);
  return out;
}

/** The Component a loaded component file stands for; `specDir` names its host files in the manifest. */
export function userComponent(c: LoadedComponentFile, specDir: string): Component {
  const services: GuestService[] = Object.entries(c.services).map(([name, spec]) => ({ name, spec }));
  const out: Component = {
    name: c.name,
    packages: () => c.packages.map((p) => (p.version ? `${p.name}=${p.version}` : p.name)),
    wholePackages: () =>
      c.packages.map((p) => (p.paths ? { package: p.name, globs: p.paths } : { package: p.name })),
    assemble: () => userFiles(c, specDir),
    keyOf: () => ({
      [`component:${c.name}`]: {
        file: c.sha256,
        pinned: c.files.flatMap((f) => (f.kind === 'host' ? [[f.path, f.sha256]] : [])),
      },
    }),
  };
  if (c.modules.length > 0) out.kernelModules = () => c.modules.map((m) => ({ ...m }));
  if (services.length > 0) out.services = () => services;
  if (c.stage1.length > 0) out.stage1 = () => [...c.stage1];
  if (Object.keys(c.checks).length > 0) out.checks = () => Object.keys(c.checks);
  if (c.pivotRoot) out.pivotRoot = true;
  if (c.memory !== undefined) out.memoryMiB = c.memory;
  return out;
}
