/**
 * The published JSON Schemas (draft 2020-12) of kjx.yaml and of component files,
 * generated from the zod schemas so they cannot disagree with what `loadSpec`
 * accepts. Editors use them for completion and hover docs (yaml-language-server:
 * `# yaml-language-server: $schema=…/kjx.schema.json`). `scripts/gen-schema.ts`
 * writes them to schema/ and a test checks the committed files are current.
 *
 * The names of the built-in components come from their registry
 * (src/components/), which the spec does not import: the caller passes them, and
 * they become the completion list of `components:` entries.
 */
import { z } from 'zod';
import { componentFileSchema } from './component-file.js';
import { specSchema } from './schema.js';

/** `$id` of the schema: relative, so it resolves against wherever the file is served from. */
export const SPEC_SCHEMA_ID = 'kjx.schema.json';
export const COMPONENT_SCHEMA_ID = 'kjx-component.schema.json';

export interface SpecSchemaOptions {
  /** Names of the built-in components (COMPONENT_NAMES of src/components/). */
  components: readonly string[];
}

/** A `components:` entry: a built-in name, or a component file's path. */
function componentItems(names: readonly string[], description: unknown): Record<string, unknown> {
  return {
    description,
    anyOf: [
      { type: 'string', enum: [...names], description: 'A built-in component.' },
      {
        type: 'string',
        pattern: '(/|\\.ya?ml$)',
        description: 'A component file of your own: a path (relative to kjx.yaml) to a .yaml file.',
      },
    ],
  };
}

/** The JSON Schema of what may be written in kjx.yaml (the input side: every field optional). */
export function specJsonSchema(o: SpecSchemaOptions): Record<string, unknown> {
  const { $schema, ...rest } = z.toJSONSchema(specSchema, { io: 'input', target: 'draft-2020-12' });
  const props = rest.properties as Record<string, Record<string, unknown>>;
  const components = props.components!;
  const items = components.items as Record<string, unknown>;
  props.components = { ...components, items: componentItems(o.components, items.description) };
  // Identity first, so the file reads top-down.
  return { $schema, $id: SPEC_SCHEMA_ID, title: 'kjx.yaml', ...rest };
}

/** The JSON Schema of a component file. */
export function componentJsonSchema(): Record<string, unknown> {
  const { $schema, ...rest } = z.toJSONSchema(componentFileSchema, { io: 'input', target: 'draft-2020-12' });
  return { $schema, $id: COMPONENT_SCHEMA_ID, title: 'kjx component file', ...rest };
}

/** The schema file's exact text: two-space JSON with a final newline. */
export function renderSpecJsonSchema(o: SpecSchemaOptions): string {
  return `${JSON.stringify(specJsonSchema(o), null, 2)}\n`;
}

export function renderComponentJsonSchema(): string {
  return `${JSON.stringify(componentJsonSchema(), null, 2)}\n`;
}
