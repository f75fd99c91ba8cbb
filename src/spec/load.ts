/**
 * Reading kjx.yaml: YAML 1.2 (the `yaml` package, which keeps every node's source
 * range) validated by the zod schema of `schema.ts`. Every problem is reported as
 * `file:line:col: field.path: expected …, got …`, pointing at the offending value,
 * at the key itself for an unknown key, and at the enclosing mapping for a missing
 * one. All problems are collected, not just the first, so one edit fixes them all.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type YAMLError,
} from 'yaml';
import type { z } from 'zod';
import { imageReferenceProblem, ociOutputReference } from '../image/image-ref.js';
import { imageArchiveProblem } from '../sources/image-archive.js';
import { formatPosition, KjxError, type SourcePosition } from '../util/errors.js';
import { formatFieldPath, specErrorMap, unknownKeyMessage } from './messages.js';
import { programFileProblems, resolveProgramPaths } from './programs.js';
import { type Spec, specSchema } from './schema.js';

const NOT_FOUND_HINT = 'run `kjx init` to write a default kjx.yaml, or pass -f FILE';
const INVALID_HINT =
  'every field is described in schema/kjx.schema.json and in the kjx.yaml that `kjx init` writes';

/** Hints for the YAML syntax errors people actually make. */
const SYNTAX_HINTS: Record<string, string> = {
  TAB_AS_INDENT: 'indent with spaces; YAML does not allow tabs for indentation',
  MISSING_CHAR: 'close the quote or bracket that opens there',
  DUPLICATE_KEY: 'a key may appear only once in a mapping; merge the two',
  BAD_INDENT:
    'check the indentation: keys of one mapping line up, and "key: value" needs a space after the colon',
  BLOCK_AS_IMPLICIT_KEY:
    'check the indentation: keys of one mapping line up, and "key: value" needs a space after the colon',
  MULTILINE_IMPLICIT_KEY:
    'check the indentation: keys of one mapping line up, and "key: value" needs a space after the colon',
  MULTIPLE_DOCS: 'kjx.yaml holds a single document; remove the extra "---"',
};
const DEFAULT_SYNTAX_HINT = 'kjx.yaml must be valid YAML 1.2';

/**
 * Read, parse and validate a spec file. Relative host paths in it are resolved
 * against the file's directory.
 * @throws KjxError SPEC_NOT_FOUND, SPEC_SYNTAX or SPEC_INVALID
 */
export function loadSpec(path: string): Spec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT' || code === 'ENOTDIR'
        ? `spec file not found: ${path}`
        : code === 'EISDIR'
          ? `${path} is a directory, not a spec file`
          : `cannot read spec file ${path}: ${code ?? String(e)}`;
    throw new KjxError('SPEC_NOT_FOUND', message, { hint: NOT_FOUND_HINT, cause: e });
  }
  return parseSpec(text, path);
}

/**
 * Parse and validate spec text. `file` names it in messages, and its directory is
 * where relative host paths point (`specDir`). Empty text means every default.
 * @throws KjxError SPEC_SYNTAX or SPEC_INVALID
 */
export function parseSpec(text: string, file: string): Spec {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const at = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line: Math.max(line, 1), column: Math.max(col, 1) };
  };
  if (doc.errors.length > 0) throw syntaxError(doc, at);

  readModesAsOctal(doc, text);
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (e) {
    // toJS refuses alias bombs ("billion laughs"); anything it throws is about the YAML.
    const position = at(doc.contents?.range[0] ?? 0);
    throw new KjxError('SPEC_SYNTAX', `${formatPosition(position)}: ${(e as Error).message}`, {
      position,
      cause: e,
      hint: DEFAULT_SYNTAX_HINT,
    });
  }
  // An empty file, or one with only comments, is the all-defaults spec.
  if (value === null || value === undefined) value = {};

  const result = specSchema.safeParse(value, { error: specErrorMap, reportInput: true });
  if (!result.success) throw invalidError(result.error.issues, doc, at);
  const spec = resolveHostPaths(result.data, resolve(dirname(file)));
  const archives = [...imageArchiveIssues(spec), ...programFileIssues(spec)];
  if (archives.length > 0) throw invalidError(archives, doc, at);
  return withFilePositions(spec, doc, at);
}

/**
 * Each `files:` entry with where kjx.yaml gives it: problems found only once the
 * tree is merged (an entry below another layer's symlink) point at their lines.
 */
function withFilePositions(spec: Spec, doc: Document, at: (offset: number) => SourcePosition): Spec {
  return {
    ...spec,
    files: spec.files.map((f, i) => ({ ...f, position: at(locate(doc, ['files', i], false)) })),
  };
}

/**
 * `images:` archives are checked while loading (exists, an uncompressed tar with
 * manifest.json or index.json), so a wrong path is reported at its line rather
 * than half-way through a build. The check walks tar headers only. With
 * `outputs: [oci]` the name must also make an image name (kjx/<name>).
 */
function imageArchiveIssues(spec: Spec): z.core.$ZodIssue[] {
  const issues: z.core.$ZodIssue[] = [];
  if (spec.outputs.includes('oci')) {
    const ref = ociOutputReference(spec.name, spec.version);
    const problem = imageReferenceProblem(ref.name, ref.tag);
    if (problem)
      issues.push({
        code: 'custom',
        path: ['name'],
        input: spec.name,
        message: `outputs: oci names the image ${ref.name}:${ref.tag}, and ${problem}`,
      });
  }
  spec.images.forEach((image, i) => {
    if (image.kind !== 'archive') return;
    const problem = imageArchiveProblem(image.archive);
    if (problem)
      issues.push({
        code: 'custom',
        path: ['images', i, 'archive'],
        input: image.archiveRef,
        message: `${image.archiveRef} ${problem}`,
      });
  });
  return issues;
}

/** `tracing.programs` files are checked while loading too, so a typo is reported at its line. */
function programFileIssues(spec: Spec): z.core.$ZodIssue[] {
  return spec.tracing.programs.flatMap((p, i) =>
    programFileProblems(p).map(
      (f): z.core.$ZodIssue => ({
        code: 'custom',
        path: ['tracing', 'programs', i, ...f.field],
        input: f.input,
        message: f.message,
      }),
    ),
  );
}

/**
 * Point every host path of a spec at `specDir` (relative ones only; the `*Ref`
 * fields keep what was written) and record `specDir`.
 */
export function resolveHostPaths(spec: Spec, specDir: string): Spec {
  const abs = (ref: string) => resolve(specDir, ref);
  let kernel = spec.kernel;
  if (kernel.kind === 'image') {
    kernel = { ...kernel, image: abs(kernel.imageRef) };
    if (kernel.modulesDirRef !== undefined) kernel.modulesDir = abs(kernel.modulesDirRef);
  }
  return {
    ...spec,
    kernel,
    packages: spec.packages.map((p) => (p.kind === 'local' ? { ...p, path: abs(p.pathRef) } : p)),
    files: spec.files.map((f) => ('fromRef' in f ? { ...f, from: abs(f.fromRef) } : f)),
    users: spec.users.map((u) => ({
      ...u,
      authorizedKeys: u.authorizedKeys.map((k) => (k.kind === 'file' ? { ...k, path: abs(k.pathRef) } : k)),
    })),
    ssh: { ...spec.ssh, hostKeyFiles: spec.ssh.hostKeyFiles.map((f) => ({ ...f, path: abs(f.pathRef) })) },
    images: spec.images.map((i) => (i.kind === 'archive' ? { ...i, archive: abs(i.archiveRef) } : i)),
    tracing: { ...spec.tracing, programs: spec.tracing.programs.map((p) => resolveProgramPaths(p, specDir)) },
    specDir,
  };
}

function syntaxError(doc: Document, at: (offset: number) => SourcePosition): KjxError {
  const lines = doc.errors.map((e) => {
    const { offset, message } = describeSyntaxError(e, doc);
    const position = at(offset);
    return { position, code: e.code, text: `${formatPosition(position)}: ${message}` };
  });
  const first = lines[0]!;
  return new KjxError('SPEC_SYNTAX', first.text, {
    position: first.position,
    details: lines.map((l) => l.text),
    hint: SYNTAX_HINTS[first.code] ?? DEFAULT_SYNTAX_HINT,
  });
}

/**
 * yaml's message, lowercased like ours. An unclosed quote is reported where it
 * opens: yaml notices only at the end of the file, which may be far below.
 */
function describeSyntaxError(e: YAMLError, doc: Document): { offset: number; message: string } {
  const message = e.message.charAt(0).toLowerCase() + e.message.slice(1);
  if (e.code === 'MISSING_CHAR' && /quote/.test(e.message)) {
    let opened: { offset: number; quote: string } | undefined;
    visit(doc, {
      Scalar(_key, node) {
        const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
        if (quoted && node.range && node.range[0] <= e.pos[0] && e.pos[0] <= node.range[1]) {
          opened = { offset: node.range[0], quote: node.type === 'QUOTE_DOUBLE' ? '"' : "'" };
          return visit.BREAK;
        }
        return undefined;
      },
    });
    if (opened)
      return {
        offset: opened.offset,
        message: `missing closing ${opened.quote} for the string that starts here`,
      };
  }
  return { offset: e.pos[0], message };
}

/**
 * `mode: 0755` is the decimal 755 in YAML 1.2, which is never what anyone means by
 * a file mode. Hand plain-digit modes to the schema as the text written, which
 * reads them as octal like chmod does ("0o755" and quoted strings are left alone).
 */
function readModesAsOctal(doc: Document, text: string): void {
  const files = doc.get('files', true);
  if (!isSeq(files)) return;
  for (const item of files.items) {
    if (!isMap(item)) continue;
    const mode = item.get('mode', true);
    if (!isScalar(mode) || typeof mode.value !== 'number' || mode.type !== 'PLAIN' || !mode.range) continue;
    const written = text.slice(mode.range[0], mode.range[1]);
    if (/^[0-9]+$/.test(written)) mode.value = written;
  }
}

interface Problem {
  path: PropertyKey[];
  message: string;
  /** Point at the key itself (an unknown key), not its value. */
  atKey: boolean;
}

function invalidError(
  issues: z.core.$ZodIssue[],
  doc: Document,
  at: (offset: number) => SourcePosition,
): KjxError {
  const problems: Problem[] = [];
  collectProblems(issues, [], problems);
  const located = problems
    .map((p, i) => ({ ...p, i, offset: locate(doc, p.path, p.atKey) }))
    // Report in file order; zod's order is the schema's.
    .sort((a, b) => a.offset - b.offset || a.i - b.i)
    .map((p) => {
      const position = at(p.offset);
      const field = formatFieldPath(p.path);
      return {
        position,
        text: `${formatPosition(position)}: ${field === '' ? '' : `${field}: `}${p.message}`,
      };
    });
  const first = located[0]!;
  return new KjxError('SPEC_INVALID', first.text, {
    position: first.position,
    details: located.map((p) => p.text),
    hint: located.length > 1 ? `${located.length} problems, all listed; ${INVALID_HINT}` : INVALID_HINT,
  });
}

/** Flatten zod issues: one problem per unknown key, unions narrowed to the branch the input was meant for. */
function collectProblems(issues: readonly z.core.$ZodIssue[], base: PropertyKey[], out: Problem[]): void {
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const allowed = keysAt(path);
      for (const key of issue.keys)
        out.push({ path: [...path, key], message: unknownKeyMessage(key, allowed), atKey: true });
    } else if (issue.code === 'invalid_key') {
      // A key of a mapping with free-form keys (services, network, env): point at the key.
      for (const inner of issue.issues) out.push({ path, message: inner.message, atKey: true });
    } else if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // A branch that failed on the type of the value itself was not what the
      // author meant ("curl" is not a mapping, a mapping is not the word "signal");
      // if exactly one branch is left, its problems are the useful ones. Otherwise
      // the union's own message says what fits.
      const meant = issue.errors.filter(
        (branch) =>
          !branch.some(
            (i) =>
              i.path.length === 0 &&
              (i.code === 'invalid_type' ||
                (i.code === 'invalid_value' && typeof i.input === 'object' && i.input !== null)),
          ),
      );
      if (meant.length === 1) collectProblems(meant[0]!, path, out);
      else out.push({ path, message: issue.message, atKey: false });
    } else {
      out.push({ path, message: issue.message, atKey: false });
    }
  }
}

/** Offset of the YAML node a path names, or of the nearest enclosing node that exists. */
function locate(doc: Document, path: readonly PropertyKey[], atKey: boolean): number {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    if (isAlias(node)) node = node.resolve(doc);
    const seg = path[i];
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg),
      );
      if (pair === undefined) break;
      if (atKey && i === path.length - 1) return rangeStart(pair.key) ?? offset;
      next = pair.value;
      // `key:` with nothing after it may have no value node; the key is the place.
      if (next === null || rangeStart(next) === undefined) return rangeStart(pair.key) ?? offset;
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
      if (next === undefined || next === null) break;
    } else {
      break;
    }
    node = next;
    offset = rangeStart(node) ?? offset;
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] | null } | null)?.range;
  return range ? range[0] : undefined;
}

/** Zod internals we read to find the keys an object allows (stable across zod 4: `_zod.def`). */
interface SchemaDef {
  type: string;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  out?: z.core.$ZodType;
  shape?: Record<string, z.core.$ZodType>;
  element?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
  options?: z.core.$ZodType[];
}

function defOf(schema: z.core.$ZodType): SchemaDef {
  return schema._zod.def as unknown as SchemaDef;
}

/** The schemas a value at this level may be checked by, wrappers (default, pipe, union) removed. */
function expand(schema: z.core.$ZodType): z.core.$ZodType[] {
  const def = defOf(schema);
  if (def.innerType) return expand(def.innerType);
  if (def.type === 'pipe' && def.in && def.out)
    return expand(defOf(def.in).type === 'transform' ? def.out : def.in);
  if (def.type === 'union' && def.options) return def.options.flatMap(expand);
  return [schema];
}

/** Keys the schema allows in the mapping at `path`, for "did you mean". */
function keysAt(path: readonly PropertyKey[]): string[] {
  let current: z.core.$ZodType[] = [specSchema];
  for (const seg of path) {
    const next: z.core.$ZodType[] = [];
    for (const s of current.flatMap(expand)) {
      const def = defOf(s);
      if (def.type === 'object' && typeof seg === 'string' && def.shape?.[seg]) next.push(def.shape[seg]);
      if (def.type === 'array' && typeof seg === 'number' && def.element) next.push(def.element);
      if (def.type === 'record' && typeof seg === 'string' && def.valueType) next.push(def.valueType);
    }
    current = next;
  }
  const keys = current.flatMap(expand).flatMap((s) => {
    const def = defOf(s);
    return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
  });
  return [...new Set(keys)];
}
