/**
 * The published JSON Schema of kjx.yaml (draft 2020-12), generated from the zod
 * schema so it cannot disagree with what `loadSpec` accepts. Editors use it for
 * completion and hover docs (yaml-language-server: `# yaml-language-server:
 * $schema=…/kjx.schema.json`). `scripts/gen-schema.ts` writes it to
 * schema/kjx.schema.json and a test checks the committed file is current.
 */
import { z } from 'zod';
import { specSchema } from './schema.js';

/** `$id` of the schema: relative, so it resolves against wherever the file is served from. */
export const SPEC_SCHEMA_ID = 'kjx.schema.json';

/** The JSON Schema of what may be written in kjx.yaml (the input side: every field optional). */
export function specJsonSchema(): Record<string, unknown> {
  const { $schema, ...rest } = z.toJSONSchema(specSchema, { io: 'input', target: 'draft-2020-12' });
  // Identity first, so the file reads top-down.
  return { $schema, $id: SPEC_SCHEMA_ID, title: 'kjx.yaml', ...rest };
}

/** The schema file's exact text: two-space JSON with a final newline. */
export function renderSpecJsonSchema(): string {
  return `${JSON.stringify(specJsonSchema(), null, 2)}\n`;
}
