/**
 * The layer order of src/ and the check that imports follow it (docs/ARCHITECTURE.md,
 * "Layers"). A folder may import from itself and from folders below it, never from
 * one above: the flow of the build (spec → packages → tree → artifacts → VM) is
 * the direction of the imports, so format code never depends on the stages or the
 * CLI that use it. Every kind of import counts: value, `import type`, `export ...
 * from`, dynamic `import()` and `typeof import()`, because each one ties the
 * importer to the imported folder. `layerViolations` is pure (file texts in,
 * violations out); the command is scripts/check-imports.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import ts from 'typescript';

/** The folders of src/, lowest first: the one place the order is declared. */
export const LAYERS = [
  'util',
  'spec',
  'rootfs',
  'sources',
  'kernel',
  'guest',
  'image',
  'components',
  'bpf',
  'plan',
  'pipeline',
  'vm',
  'trace',
  'cluster',
  'cli',
] as const;

/** One import against the order. */
export interface LayerViolation {
  /** The importing file, relative to the repository ("src/plan/resolve.ts"). */
  file: string;
  /** 1-based line of the import. */
  line: number;
  /** The specifier as written ("../image/grub.js"). */
  specifier: string;
  /** What is wrong, naming the rule. */
  rule: string;
}

/** The folder of a path under src/ ("src/plan/resolve.ts" → "plan"), or undefined for src/'s own files. */
function folderOf(path: string): string | undefined {
  const parts = path.split('/');
  return parts[0] === 'src' && parts.length > 2 ? parts[1] : undefined;
}

/**
 * The imports of `files` (repository-relative path → text) that go against
 * LAYERS: into a higher folder, into a folder LAYERS does not name, or out of one
 * it does not name (a new folder gets its place in the order first).
 */
export function layerViolations(files: ReadonlyMap<string, string>): LayerViolation[] {
  const rank = new Map<string, number>(LAYERS.map((l, i) => [l, i]));
  const out: LayerViolation[] = [];
  for (const [file, text] of files) {
    const from = folderOf(file);
    const info = ts.preProcessFile(text, true, true);
    const lineOf = (pos: number): number => text.slice(0, pos).split('\n').length;
    for (const ref of info.importedFiles) {
      const specifier = ref.fileName;
      if (!specifier.startsWith('.')) continue; // packages and node: built-ins
      const target = posix.normalize(posix.join(posix.dirname(file), specifier));
      const to = folderOf(target);
      const at = { file, line: lineOf(ref.pos), specifier };
      if (from === undefined || to === undefined || from === to) continue;
      const rf = rank.get(from);
      const rt = rank.get(to);
      if (rf === undefined) {
        out.push({
          ...at,
          rule: `src/${from}/ has no place in the layer order (LAYERS in scripts/import-layers.ts)`,
        });
      } else if (rt === undefined) {
        out.push({
          ...at,
          rule: `src/${to}/ has no place in the layer order (LAYERS in scripts/import-layers.ts)`,
        });
      } else if (rt > rf) {
        out.push({
          ...at,
          rule: `${from} may not import from ${to}: ${to} is above ${from} in the layer order`,
        });
      }
    }
  }
  return out.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
}

/** One line per violation: "src/plan/resolve.ts:12: imports ../image/grub.js: plan may not import from image: ...". */
export function formatViolation(v: LayerViolation): string {
  return `${v.file}:${v.line}: imports ${v.specifier}: ${v.rule}`;
}

/** The TypeScript files under `root`/src, by repository-relative path ("src/plan/resolve.ts"). */
export function sourceFiles(root: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(path);
      else if (e.isFile() && e.name.endsWith('.ts')) files.set(path, readFileSync(join(root, path), 'utf8'));
    }
  };
  walk('src');
  return files;
}
