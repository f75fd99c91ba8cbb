/** The committed schema/*.schema.json files are what the zod schemas generate, and they document every field. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { COMPONENT_NAMES } from '../../src/components/index.js';
import {
  componentJsonSchema,
  renderComponentJsonSchema,
  renderSpecJsonSchema,
  specJsonSchema,
} from '../../src/spec/json-schema.js';

const specJson = () => specJsonSchema({ components: COMPONENT_NAMES });

test('schema/kjx.schema.json is up to date (regenerate with `npm run schema`)', () => {
  const committed = readFileSync(new URL('../../schema/kjx.schema.json', import.meta.url), 'utf8');
  assert.equal(committed, renderSpecJsonSchema({ components: COMPONENT_NAMES }));
});

test('schema/kjx-component.schema.json is up to date (regenerate with `npm run schema`)', () => {
  const committed = readFileSync(new URL('../../schema/kjx-component.schema.json', import.meta.url), 'utf8');
  assert.equal(committed, renderComponentJsonSchema());
});

test('components: entries complete to the built-in names, or are component files', () => {
  const items = (specJson().properties as Record<string, { items: { anyOf: { enum?: string[] }[] } }>)
    .components!.items;
  assert.deepEqual(items.anyOf[0]?.enum, [...COMPONENT_NAMES]);
  assert.equal(items.anyOf.length, 2);
});

test('the component file schema: identity, and the fields a component may have', () => {
  const schema = componentJsonSchema();
  assert.equal(schema.$id, 'kjx-component.schema.json');
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(Object.keys(schema.properties as object).sort(), [
    'checks',
    'description',
    'files',
    'memory',
    'modules',
    'name',
    'packages',
    'pivotRoot',
    'services',
    'stage1',
  ]);
  assert.deepEqual(schema.required, ['name']);
  const problems: string[] = [];
  walk(schema, '#', problems);
  assert.deepEqual(problems, []);
});

test('identity and top-level shape', () => {
  const schema = specJson();
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
  walk(specJson(), '#', problems);
  assert.deepEqual(problems, []);
});
