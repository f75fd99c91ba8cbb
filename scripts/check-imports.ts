/**
 * `npm run lint`'s import check: fails when a file of src/ imports against the
 * layer order (scripts/import-layers.ts, docs/ARCHITECTURE.md "Layers"), naming
 * the file, the import and the rule.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatViolation, layerViolations, sourceFiles } from './import-layers.js';

const files = sourceFiles(join(dirname(fileURLToPath(import.meta.url)), '..'));
const violations = layerViolations(files);
for (const v of violations) console.error(formatViolation(v));
if (violations.length > 0) {
  console.error(`check-imports: ${violations.length} import(s) against the layer order`);
  process.exit(1);
}
console.log(`check-imports: ${files.size} files of src/ follow the layer order`);
