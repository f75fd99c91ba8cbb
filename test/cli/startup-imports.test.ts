/**
 * Every `kjx` command starts by loading the command line (src/cli/main.ts) and what it
 * imports statically; `kjx exec` and `kjx ssh` then attach through src/vm/detached.ts.
 * None of that may load the spec's schema: zod is 95 modules and the schema ~0.1 s
 * of a start, which `kjx exec`, `ps` and `stop` never use (docs/boot-time.md). A build
 * or a boot of a spec validated before (pipeline/spec-cache.ts) and a lock checked
 * before (plan/lock.ts) goes through the modules below without them too: the loaders
 * import the schema and the lock's check only when the bytes are new.
 * Imports are read from each file as TypeScript emits it (type-only imports gone).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The specifiers a module imports when it runs: static imports and re-exports, not `import()`. */
function runtimeImports(file: string): string[] {
  const js = ts.transpileModule(readFileSync(file, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: file,
  }).outputText;
  const out: string[] = [];
  for (const m of js.matchAll(/^\s*(?:import|export)\s+(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm))
    out.push(m[1]!);
  return out;
}

/** Everything `entry` loads statically: source files (repository-relative) and packages. */
function closure(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [join(root, entry)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    const rel = relative(root, file);
    if (files.has(rel)) continue;
    files.add(rel);
    for (const spec of runtimeImports(file)) {
      if (!spec.startsWith('.')) {
        if (!spec.startsWith('node:')) packages.add(spec.split('/')[0]!);
        continue;
      }
      const target = join(dirname(file), spec).replace(/\.js$/, '.ts');
      assert.ok(existsSync(target), `${rel} imports ${spec}, which is not a source file`);
      todo.push(target);
    }
  }
  return { files, packages };
}

const RUN_PATH = [
  'src/cli/main.ts',
  'src/vm/detached.ts',
  'src/pipeline/spec-cache.ts',
  'src/pipeline/build.ts',
  'src/vm/prepare.ts',
  'src/vm/ephemeral.ts',
];
for (const entry of RUN_PATH) {
  test(`${entry} starts without the spec schema or zod`, () => {
    const { files, packages } = closure(entry);
    assert.ok(files.size > 5, `the walk found ${files.size} files: the import reader is broken`);
    assert.ok(!files.has('src/spec/schema.ts'), `${entry} reaches src/spec/schema.ts`);
    assert.ok(!packages.has('zod'), `${entry} reaches zod`);
  });
}

test('the walk sees the schema where it is imported', () => {
  const { files, packages } = closure('src/spec/load.ts');
  assert.ok(files.has('src/spec/schema.ts'));
  assert.ok(packages.has('zod'));
});
