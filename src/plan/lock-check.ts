/**
 * Checking `kjx.lock` text (lock.ts reads and writes the file): a lock comes with a
 * clone like the spec does, so its shape is checked with zod and every value that
 * reaches apt against Debian's grammar (debian-grammar.ts) before anything runs.
 * Apart from lock.ts so a build whose lock these exact bytes passed before (the
 * `known` record of lock.ts) loads neither.
 */
import { type Document, isMap, isNode, isScalar, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import {
  archivePathProblem,
  debArchProblem,
  debNameProblem,
  debVersionProblem,
  packageRefProblem,
} from '../spec/debian-grammar.js';
import { expected, specErrorMap } from '../spec/messages.js';
import { formatPosition, KjxError, type SourcePosition } from '../util/errors.js';
import { lockText } from './lock.js';

const lockedPackage = z
  .object({
    version: z.string(),
    arch: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, {
      error: (iss) => expected('a sha256 sum of 64 lowercase hexadecimal digits', iss.input),
    }),
    size: z.number().int().nonnegative(),
    filename: z.string(),
    root: z.boolean(),
    depends: z.array(z.array(z.string())),
  })
  .strict();

const lockSchema = z
  .object({
    lockVersion: z.literal(1),
    /** The root names the spec and its components asked for, sorted. */
    roots: z.array(z.string()),
    kernelRoot: z.string().nullable(),
    packages: z.record(z.string(), lockedPackage),
    kernel: z.object({ name: z.string() }).extend(lockedPackage.shape).nullable(),
    /** Boot loader packages media outputs need (their files go into the ISO or disk, not the guest). */
    bootRoots: z.array(z.string()).optional(),
    boot: z.record(z.string(), lockedPackage).optional(),
  })
  .strict();

export type Lock = z.infer<typeof lockSchema>;
export type LockedPackage = z.infer<typeof lockedPackage>;

const LOCK_HINT = 'delete it or run `kjx build --update-lock` to write a new one';

type LockPath = (string | number)[];
interface LockIssue {
  path: LockPath;
  /** The problem is the mapping key at `path` (a package name), not its value. */
  key?: boolean;
  message: string;
}

/**
 * Parse and check lock text; `file` names it in messages.
 * @throws KjxError LOCK_INVALID naming file:line:col of each problem
 */
export function parseLock(text: string, file: string): Lock {
  // the YAML parse is only for positions and keys given twice, and takes ~0.1-0.5 s of
  // every `kjx run` under load: a lock exactly as writeLock wrote it has neither problem
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = undefined;
  }
  if (raw !== undefined && text === lockText(raw)) {
    const r = lockSchema.safeParse(raw, { error: specErrorMap, reportInput: true });
    if (r.success && grammarIssues(r.data).length === 0) return r.data;
  }
  return parseLockWithPositions(text, file);
}

/** parseLock with the YAML parser's positions, for every lock that is not as kjx wrote it. */
function parseLockWithPositions(text: string, file: string): Lock {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line: Math.max(line, 1), column: Math.max(col, 1) };
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // JSON.parse names no line; the YAML parser (JSON is YAML) finds where it goes wrong
    const position = at(doc.errors[0]?.pos[0] ?? 0);
    throw new KjxError(
      'LOCK_INVALID',
      `${formatPosition(position)}: not valid JSON (${(e as Error).message.split('\n')[0]})`,
      { position, hint: LOCK_HINT, cause: e },
    );
  }
  if (doc.errors.length > 0) {
    // valid JSON that YAML refuses: a key given twice (JSON.parse keeps the last one silently)
    const position = at(doc.errors[0]!.pos[0]);
    throw new KjxError('LOCK_INVALID', `${formatPosition(position)}: ${doc.errors[0]!.message}`, {
      position,
      hint: LOCK_HINT,
    });
  }
  const r = lockSchema.safeParse(raw, { error: specErrorMap, reportInput: true });
  const issues: LockIssue[] = r.success
    ? grammarIssues(r.data)
    : r.error.issues.map((i) => ({ path: i.path as LockPath, message: i.message }));
  if (issues.length === 0 && r.success) return r.data;
  const lines = issues.map((i) => {
    const position = at(offsetOf(doc, i.path, i.key === true));
    return { position, text: `${formatPosition(position)}: ${i.path.join('.') || '(top)'}: ${i.message}` };
  });
  throw new KjxError('LOCK_INVALID', lines[0]!.text, {
    position: lines[0]!.position,
    details: lines.slice(1).map((l) => l.text),
    hint: LOCK_HINT,
  });
}

/** Where the value (or the key) at `path` starts in the text; the closest enclosing node when it is missing. */
function offsetOf(doc: Document, path: LockPath, key: boolean): number {
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    if (key && n === path.length && n > 0) {
      const parent = doc.getIn(sub.slice(0, -1), true);
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === sub[n - 1]);
        if (pair && isScalar(pair.key) && pair.key.range) return pair.key.range[0];
      }
    }
    const node = n === 0 ? doc.contents : doc.getIn(sub, true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return 0;
}

/** Every value of a structurally sound lock that Debian's grammar refuses. */
function grammarIssues(lock: Lock): LockIssue[] {
  const issues: LockIssue[] = [];
  const check = (path: LockPath, value: string, problem: (v: string) => string | undefined, key = false) => {
    const p = problem(value);
    if (p) issues.push({ path, key, message: expected(p, value) });
  };
  const entry = (path: LockPath, p: LockedPackage) => {
    check([...path, 'version'], p.version, debVersionProblem);
    check([...path, 'arch'], p.arch, debArchProblem);
    check([...path, 'filename'], p.filename, archivePathProblem);
    for (const [g, group] of p.depends.entries())
      for (const [a, alt] of group.entries()) check([...path, 'depends', g, a], alt, debNameProblem);
  };
  for (const [i, r] of lock.roots.entries()) check(['roots', i], r, packageRefProblem);
  if (lock.kernelRoot !== null) check(['kernelRoot'], lock.kernelRoot, debNameProblem);
  for (const [name, p] of Object.entries(lock.packages)) {
    check(['packages', name], name, debNameProblem, true);
    entry(['packages', name], p);
  }
  if (lock.kernel) {
    check(['kernel', 'name'], lock.kernel.name, debNameProblem);
    entry(['kernel'], lock.kernel);
  }
  for (const [i, r] of (lock.bootRoots ?? []).entries()) check(['bootRoots', i], r, debNameProblem);
  for (const [name, p] of Object.entries(lock.boot ?? {})) {
    check(['boot', name], name, debNameProblem, true);
    entry(['boot', name], p);
  }
  return issues;
}
