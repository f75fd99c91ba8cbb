/**
 * Writes schema/kjx.schema.json and schema/kjx-component.schema.json from the zod
 * schemas (`npm run schema`). The files are committed so editors and docs can use
 * them without building; test/spec/json-schema fails when one is out of date, so
 * rerun this after changing src/spec/schema.ts, src/spec/component-file.ts or the
 * component registry.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMPONENT_NAMES } from '../src/components/index.js';
import { renderComponentJsonSchema, renderSpecJsonSchema } from '../src/spec/json-schema.js';
import { writeFileAtomic } from '../src/util/atomic.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema');
for (const [name, text] of [
  ['kjx.schema.json', renderSpecJsonSchema({ components: COMPONENT_NAMES })],
  ['kjx-component.schema.json', renderComponentJsonSchema()],
] as const) {
  writeFileAtomic(join(dir, name), text);
  console.log(`wrote ${join(dir, name)}`);
}
