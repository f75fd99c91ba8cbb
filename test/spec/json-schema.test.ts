/** The committed schema/kjx.schema.json is what the zod schema generates, and it documents every field. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderSpecJsonSchema, specJsonSchema } from '../../src/spec/json-schema.js';

test('schema/kjx.schema.json is up to date (regenerate with `npm run schema`)', () => {
  const committed = readFileSync(new URL('../../schema/kjx.schema.json', import.meta.url), 'utf8');
  assert.equal(committed, renderSpecJsonSchema());
});

test('identity and top-level shape', () => {
  const schema = specJsonSchema();
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.equal(schema.$id, 'kjx.schema.json');
  assert.equal(schema.title, 'kjx.yaml');
  assert.equal(schema.type, 'object');
  assert.equal(schema.additionalProperties, false);
  assert.equal(schema.required, undefined, 'every top-level field is optional');
});

/** Every property of every object has a description, and objects are closed. */
function walk(node: unknown, path: string, problems: string[]): void {
  if (Array.isArray(node)) {
    for (const [i, n] of node.entries()) walk(n, `${path}[${i}]`, problems);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  // closed: no unknown keys (additionalProperties false), or every key typed (a mapping
  // of names to one shape, like services or network: additionalProperties is a schema)
  const ap = obj.additionalProperties;
  if (obj.type === 'object' && ap !== false && (typeof ap !== 'object' || ap === null))
    problems.push(`${path}: not closed`);
  if (obj.properties && typeof obj.properties === 'object') {
    for (const [key, prop] of Object.entries(obj.properties as Record<string, Record<string, unknown>>)) {
      if (typeof prop.description !== 'string') problems.push(`${path}.${key}: no description`);
    }
  }
  for (const [key, value] of Object.entries(obj)) walk(value, `${path}/${key}`, problems);
}

test('every field is described and every object is strict', () => {
  const problems: string[] = [];
  walk(specJsonSchema(), '#', problems);
  assert.deepEqual(problems, []);
});
