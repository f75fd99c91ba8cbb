/**
 * Reading kjx.yaml: YAML 1.2 (the `yaml` package, which keeps every node's source
 * range) validated by the zod schema of `schema.ts`. Every problem is reported as
 * `file:line:col: field.path: expected …, got …`, pointing at the offending value,
 * at the key itself for an unknown key, and at the enclosing mapping for a missing
 * one. All problems are collected, not just the first, so one edit fixes them all.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import {
  type Document,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type YAMLError,
} from 'yaml';
import type { z } from 'zod';
import { formatPosition, KjxError, type SourcePosition } from '../util/errors.js';
import { sha256 } from '../util/hash.js';
import { sha256File } from '../util/hash-file.js';
import { type ComponentFileSpec, componentFileSchema, type LoadedComponentFile } from './component-file.js';
import { imageArchiveProblem } from './image-archive-check.js';
import { imageReferenceProblem, ociOutputReference } from './image-ref.js';
import { formatFieldPath, specErrorMap, unknownKeyMessage } from './messages.js';
import { INVALID_HINT, locate, positionsOf, withSource } from './positions.js';
import { programFileProblems, resolveProgramPaths } from './programs.js';
import { type Spec, specSchema } from './schema.js';
import { isComponentPath } from './values.js';

const NOT_FOUND_HINT = 'run `kjx init` to write a default kjx.yaml, or pass -f FILE';
const COMPONENT_INVALID_HINT =
  'every field of a component file is described in schema/kjx-component.schema.json and docs/components.md';

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

/** How one kind of YAML input is read: its schema and the hint its problems end with. */
interface InputKind<S extends z.ZodType> {
  schema: S;
  invalidHint: string;
}

interface ParsedInput<T> {
  value: T;
  doc: Document;
  at: (offset: number) => SourcePosition;
}

/**
 * Parse YAML text and validate it with a schema, every problem positioned.
 * @throws KjxError SPEC_SYNTAX or SPEC_INVALID
 */
function parseInput<S extends z.ZodType>(
  text: string,
  file: string,
  kind: InputKind<S>,
): ParsedInput<z.output<S>> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const at = positionsOf(file, lineCounter);
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
  // An empty file, or one with only comments, is the all-defaults input.
  if (value === null || value === undefined) value = {};

  const result = kind.schema.safeParse(value, { error: specErrorMap, reportInput: true });
  if (!result.success) throw invalidError(result.error.issues, doc, at, kind);
  return { value: result.data, doc, at };
}

/**
 * Parse and validate another YAML input of kjx (kjx-cluster.yaml) against its
 * schema, its problems positioned and worded like kjx.yaml's.
 * @throws KjxError SPEC_SYNTAX or SPEC_INVALID
 */
export function parseYamlInput<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
  invalidHint: string,
): z.output<S> {
  return parseInput(text, file, { schema, invalidHint }).value;
}

const SPEC_KIND: InputKind<typeof specSchema> = { schema: specSchema, invalidHint: INVALID_HINT };
const COMPONENT_KIND: InputKind<typeof componentFileSchema> = {
  schema: componentFileSchema,
  invalidHint: COMPONENT_INVALID_HINT,
};

/**
 * Parse and validate spec text. `file` names it in messages, and its directory is
 * where relative host paths point (`specDir`). Empty text means every default.
 * Component files the spec names by path are read and validated too, their
 * problems positioned in them.
 * @throws KjxError SPEC_SYNTAX or SPEC_INVALID
 */
export function parseSpec(text: string, file: string): Spec {
  const { value, doc, at } = parseInput(text, file, SPEC_KIND);
  const spec = resolveHostPaths(value, resolve(dirname(file)));
  const archives = [...imageArchiveIssues(spec), ...programFileIssues(spec)];
  if (archives.length > 0) throw invalidError(archives, doc, at, SPEC_KIND);
  const withFiles = withFilePositions(spec, doc, at);
  const componentFiles = loadComponentFiles(withFiles, file, doc, at);
  return withSource(
    { ...withFiles, ...(componentFiles.length > 0 ? { componentFiles } : {}) },
    { file, text },
  );
}

/**
 * Read the component files `components:` names by path (relative to kjx.yaml).
 * A file that cannot be read is a problem at its entry in kjx.yaml; a problem
 * inside one is positioned in it.
 */
function loadComponentFiles(
  spec: Spec,
  specFile: string,
  doc: Document,
  at: (offset: number) => SourcePosition,
): LoadedComponentFile[] {
  const out: LoadedComponentFile[] = [];
  const missing: z.core.$ZodIssue[] = [];
  spec.components.forEach((ref, index) => {
    if (!isComponentPath(ref)) return;
    const path = resolve(spec.specDir, ref);
    // messages name it as reached from kjx.yaml, the way kjx.yaml itself was named
    const file = isAbsolute(ref) ? ref : join(dirname(specFile), ref);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      missing.push({
        code: 'custom',
        path: ['components', index],
        input: ref,
        message:
          code === 'ENOENT' || code === 'ENOTDIR'
            ? `component file ${ref} does not exist (looked at ${path})`
            : code === 'EISDIR'
              ? `${ref} is a directory, not a component file`
              : `cannot read component file ${ref}: ${code ?? String(e)}`,
      });
      return;
    }
    const parsed = parseInput(text, file, COMPONENT_KIND);
    const component = resolveComponentPaths(parsed.value, dirname(path));
    const problems = componentFileIssues(component);
    if (problems.length > 0) throw invalidError(problems, parsed.doc, parsed.at, COMPONENT_KIND);
    out.push({ ...component, ref, index, path, sha256: sha256(text), source: { file, text } });
  });
  if (missing.length > 0) throw invalidError(missing, doc, at, SPEC_KIND);
  return out;
}

/** Host paths of a component file point at its directory (the `*Ref` fields keep what was written). */
function resolveComponentPaths(c: ComponentFileSpec, dir: string): ComponentFileSpec {
  return {
    ...c,
    files: c.files.map((f) => (f.kind === 'host' ? { ...f, from: resolve(dir, f.fromRef) } : f)),
  };
}

/**
 * Host files of a component are checked against their pins while loading, so a
 * wrong path or a changed file is reported at its line, with the sum it has.
 */
function componentFileIssues(c: ComponentFileSpec): z.core.$ZodIssue[] {
  const issues: z.core.$ZodIssue[] = [];
  c.files.forEach((f, i) => {
    if (f.kind !== 'host') return;
    let problem: { field: string; message: string } | undefined;
    try {
      if (!statSync(f.from).isFile())
        problem = { field: 'from', message: `${f.fromRef} is not a regular file (looked at ${f.from})` };
      else {
        const actual = sha256File(f.from);
        if (actual !== f.sha256)
          problem = {
            field: 'sha256',
            message: `${f.fromRef} has sha256 ${actual}, not the pinned ${f.sha256}; if it changed on purpose, pin the new sum`,
          };
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      problem = {
        field: 'from',
        message:
          code === 'ENOENT' || code === 'ENOTDIR'
            ? `${f.fromRef} does not exist (looked at ${f.from})`
            : `cannot read ${f.fromRef}: ${code ?? String(e)}`,
      };
    }
    if (problem)
      issues.push({
        code: 'custom',
        path: ['files', i, problem.field],
        input: problem.field === 'from' ? f.fromRef : f.sha256,
        message: problem.message,
      });
  });
  return issues;
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
  if (kernel.kind === 'build') {
    const source =
      kernel.source.kind === 'tree' ? { ...kernel.source, path: abs(kernel.source.pathRef) } : kernel.source;
    const config = kernel.config.map((e) => (e.kind === 'file' ? { ...e, path: abs(e.pathRef) } : e));
    kernel = { ...kernel, source, config };
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
  kind: InputKind<z.ZodType>,
): KjxError {
  const problems: Problem[] = [];
  collectProblems(issues, [], problems, kind.schema);
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
    hint:
      located.length > 1 ? `${located.length} problems, all listed; ${kind.invalidHint}` : kind.invalidHint,
  });
}

/** Flatten zod issues: one problem per unknown key, unions narrowed to the branch the input was meant for. */
function collectProblems(
  issues: readonly z.core.$ZodIssue[],
  base: PropertyKey[],
  out: Problem[],
  root: z.core.$ZodType,
): void {
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const allowed = keysAt(root, path);
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
      if (meant.length === 1) collectProblems(meant[0]!, path, out, root);
      else out.push({ path, message: issue.message, atKey: false });
    } else {
      out.push({ path, message: issue.message, atKey: false });
    }
  }
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
function keysAt(root: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.core.$ZodType[] = [root];
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
