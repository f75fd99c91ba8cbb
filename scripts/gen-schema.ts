/**
 * Writes schema/kjx.schema.json from the zod schema (`npm run schema`). The file is
 * committed so editors and docs can use it without building; test/spec/json-schema
 * fails when it is out of date, so rerun this after changing src/spec/schema.ts.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderSpecJsonSchema } from '../src/spec/json-schema.js';
import { writeFileAtomic } from '../src/util/atomic.js';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema', 'kjx.schema.json');
writeFileAtomic(out, renderSpecJsonSchema());
console.log(`wrote ${out}`);
