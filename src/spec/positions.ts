/**
 * Where a field of a YAML input (kjx.yaml, a component file) is: `file:line:col`
 * from the node's source range, the way `load.ts` reports schema problems. Steps
 * after loading (the plan's cross-field rules) report their problems through
 * `problemsError` with the same wording and order, so a problem reads alike
 * whichever step finds it.
 *
 * A loaded spec keeps its source text (`SpecSource`); the YAML is parsed again
 * only when a problem is reported.
 */
import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { formatPosition, KjxError, type SourcePosition } from '../util/errors.js';
import { formatFieldPath } from './messages.js';

/** The text a spec or component file was read from, and the name messages give it. */
export interface SpecSource {
  file: string;
  text: string;
}

/**
 * Give a spec (or another value read from YAML) the source it was read from, as
 * a property that is not enumerable: the value compares, hashes and prints as
 * the data the file gives, and where that data sits in the file is for messages
 * only. A copy made with `{...spec}` does not carry it; `withSource` does.
 */
export function withSource<T extends object>(value: T, source: SpecSource | undefined): T {
  if (source)
    Object.defineProperty(value, 'source', { value: source, enumerable: false, configurable: true });
  return value;
}

/** A problem at a field of a YAML input. */
export interface FieldProblem {
  source?: SpecSource | undefined;
  path: readonly PropertyKey[];
  message: string;
  /** Point at the key itself (an unknown or reserved name), not its value. */
  atKey?: boolean;
}

/** What the hint says after the count of problems: where every field is described. */
export const INVALID_HINT =
  'every field is described in schema/kjx.schema.json and in the kjx.yaml that `kjx init` writes';

/** Offset of the YAML node a path names, or of the nearest enclosing node that exists. */
export function locate(doc: Document, path: readonly PropertyKey[], atKey: boolean): number {
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

/** `offset -> file:line:col` for one parsed text. */
export function positionsOf(file: string, lineCounter: LineCounter): (offset: number) => SourcePosition {
  return (offset) => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line: Math.max(line, 1), column: Math.max(col, 1) };
  };
}

interface Parsed {
  doc: Document;
  at: (offset: number) => SourcePosition;
}

function parse(source: SpecSource): Parsed {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source.text, { lineCounter, prettyErrors: false });
  return { doc, at: positionsOf(source.file, lineCounter) };
}

/** Where `path` is in `source` (the document's start for a spec made without a file). */
export function fieldPosition(
  source: SpecSource | undefined,
  path: readonly PropertyKey[],
  atKey = false,
): SourcePosition | undefined {
  if (!source) return undefined;
  const p = parse(source);
  return p.at(locate(p.doc, path, atKey));
}

/**
 * One SPEC_INVALID error for problems found after loading: each line
 * `file:line:col: field: message`, in file order, the first as the message and
 * all of them in `details`, as `load.ts` reports schema problems.
 */
export function problemsError(problems: readonly FieldProblem[], hint = INVALID_HINT): KjxError {
  const parsed = new Map<SpecSource, Parsed>();
  const files = [...new Set(problems.map((p) => p.source?.file ?? ''))];
  const located = problems
    .map((p, i) => {
      let position: SourcePosition | undefined;
      let offset = 0;
      if (p.source) {
        const doc = parsed.get(p.source) ?? parse(p.source);
        parsed.set(p.source, doc);
        offset = locate(doc.doc, p.path, p.atKey ?? false);
        position = doc.at(offset);
      }
      const field = formatFieldPath(p.path);
      const text = `${position ? `${formatPosition(position)}: ` : ''}${field === '' ? '' : `${field}: `}${p.message}`;
      return { i, file: files.indexOf(p.source?.file ?? ''), offset, position, text };
    })
    // each file's problems together (in the order the files first come up), in file order
    .sort((a, b) => a.file - b.file || a.offset - b.offset || a.i - b.i);
  const first = located[0]!;
  return new KjxError('SPEC_INVALID', first.text, {
    ...(first.position ? { position: first.position } : {}),
    details: located.map((p) => p.text),
    hint: located.length > 1 ? `${located.length} problems, all listed; ${hint}` : hint,
  });
}
