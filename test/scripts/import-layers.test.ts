/**
 * The layer check of src/'s imports (scripts/import-layers.ts): what counts as an
 * import, what breaks the order, and that the message names file, import and rule.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatViolation, LAYERS, layerViolations, sourceFiles } from '../../scripts/import-layers.js';

const check = (files: Record<string, string>) => layerViolations(new Map(Object.entries(files)));

describe('layerViolations', () => {
  it('reports an import into a higher folder with file, line, import and rule', () => {
    const v = check({
      'src/rootfs/a.ts': "import { x } from '../util/x.js';\n\nimport { b } from '../image/b.js';\n",
    });
    assert.equal(v.length, 1);
    assert.equal(
      formatViolation(v[0]!),
      'src/rootfs/a.ts:3: imports ../image/b.js: rootfs may not import from image: image is above rootfs in the layer order',
    );
  });

  it('counts type-only imports, re-exports, dynamic import() and typeof import()', () => {
    const v = check({
      'src/spec/a.ts': [
        "import type { T } from '../cli/t.js';",
        "export { u } from '../vm/u.js';",
        "export * from '../trace/w.js';",
        "const m = await import('../pipeline/m.js');",
        "type Q = typeof import('../image/q.js');",
      ].join('\n'),
    });
    assert.deepEqual(
      v.map((x) => [x.line, x.specifier]),
      [
        [1, '../cli/t.js'],
        [2, '../vm/u.js'],
        [3, '../trace/w.js'],
        [4, '../pipeline/m.js'],
        [5, '../image/q.js'],
      ],
    );
  });

  it('allows the same folder, lower folders, packages and node: built-ins', () => {
    const v = check({
      'src/cli/a.ts':
        "import { b } from './b.js';\nimport { c } from '../util/c.js';\nimport { d } from '../spec/d.js';",
      'src/util/b.ts': "import { z } from 'zod';\nimport { readFileSync } from 'node:fs';",
      'src/vm/c.ts': "import type { Tree } from '../rootfs/tree.js';",
    });
    assert.deepEqual(v, []);
  });

  it('refuses a folder that has no place in the order, either way', () => {
    const v = check({
      'src/extra/a.ts': "import { e } from '../util/e.js';",
      'src/util/b.ts': "import { f } from '../extra/f.js';",
    });
    assert.deepEqual(
      v.map((x) => x.rule),
      [
        'src/extra/ has no place in the layer order (LAYERS in scripts/import-layers.ts)',
        'src/extra/ has no place in the layer order (LAYERS in scripts/import-layers.ts)',
      ],
    );
  });

  it('names every folder of src/ in the order, and src/ follows it', () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const dirs = readdirSync(join(root, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory());
    assert.deepEqual(dirs.map((d) => d.name).sort(), [...LAYERS].sort());
    const files = sourceFiles(root);
    assert.ok(files.size > 100, 'src/ was read');
    assert.deepEqual(layerViolations(files).map(formatViolation), []);
  });
});
