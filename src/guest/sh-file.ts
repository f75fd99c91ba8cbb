/**
 * Guest shell kept as real files: `src/<folder>/sh/*.sh`, linted by shellcheck
 * (`scripts/shellcheck.sh`, busybox ash being POSIX sh plus a few extensions),
 * tested under busybox `sh`, shipped beside the compiled modules (`npm run build`
 * copies them into build/) and read when kjx renders a script.
 *
 * Values reach a script only through a header kjx writes between the file's head
 * and its body, never by editing the body. The head is the run of comment lines at
 * the top of the file (the shebang included); it declares every name it takes:
 *
 *     # @value KJX_NAME  what it holds      kjx writes KJX_NAME='...' below the head
 *     # @input KJX_NAME  where it comes from  set by someone else: the environment or
 *                                            a file the script sources; kjx writes nothing
 *
 * Rendering refuses a declared value kjx does not give and a value the file does not
 * declare; `declarationProblems` (run over every file by the tests) finds a body that
 * uses a `KJX_` name it neither declares nor assigns, and a declared input it never
 * uses (a value may be there for the scripts that source the file). A body line `# kjx:include FILE.sh` is replaced by that file's body (its
 * declarations join the includer's), so two scripts can share functions.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KjxError } from '../util/errors.js';
import { shQuote } from './shell.js';

/** A name kjx writes or a script takes: `KJX_` and capitals, so no spec `env:` name can be one. */
const NAME = /^KJX_[A-Z0-9_]+$/;
const DECLARATION = /^# @(value|input) (\S+)(?:\s+(.*))?$/;
const INCLUDE = /^# kjx:include (\S+)$/;

/** One shell file, its includes resolved. */
export interface ShFile {
  /** Where it was read from (for messages). */
  path: string;
  /** The leading comment lines, shebang first when there is one. */
  head: string[];
  /** Everything after the head, includes replaced. */
  body: string[];
  /** Declared values, in declaration order, with what each holds. */
  values: Map<string, string>;
  /** Declared inputs (set by the environment or a sourced file). */
  inputs: Map<string, string>;
}

/** What kjx writes into a script's header: each declared value, by name. */
export type ShValues = Record<string, string | number>;

function internal(message: string, path: string): KjxError {
  return new KjxError('INTERNAL', `guest script ${path}: ${message}`, {
    hint: "the shell files beside kjx's modules are part of kjx: run `npm run build` in a checkout (it copies src/**/sh/*.sh into build/), or reinstall kjx",
  });
}

/** Read a shell file: a file URL made from the import.meta.url of the module that owns it (./sh/NAME.sh). */
export function readShFile(file: URL | string): ShFile {
  const path = typeof file === 'string' ? file : fileURLToPath(file);
  return parse(path, [path]);
}

function parse(path: string, seen: string[]): ShFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw internal(`cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  if (!text.endsWith('\n')) throw internal('does not end with a newline', path);
  const lines = text.slice(0, -1).split('\n');
  let n = 0;
  while (n < lines.length && lines[n]!.startsWith('#')) n++;
  const head = lines.slice(0, n);
  const values = new Map<string, string>();
  const inputs = new Map<string, string>();
  for (const line of head) {
    const m = DECLARATION.exec(line);
    if (!m) continue;
    const [, kind, name, what] = m as unknown as [string, 'value' | 'input', string, string | undefined];
    if (!NAME.test(name)) throw internal(`declares ${name}, which is not a KJX_ name in capitals`, path);
    if (values.has(name) || inputs.has(name)) throw internal(`declares ${name} twice`, path);
    (kind === 'value' ? values : inputs).set(name, what ?? '');
  }
  const body: string[] = [];
  for (const line of lines.slice(n)) {
    const inc = INCLUDE.exec(line);
    if (!inc) {
      body.push(line);
      continue;
    }
    const target = join(dirname(path), inc[1]!);
    if (seen.includes(target)) throw internal(`includes ${inc[1]} in a loop`, path);
    const part = parse(target, [...seen, target]);
    body.push(...part.body);
    for (const [name, what] of part.values) if (!values.has(name)) values.set(name, what);
    for (const [name, what] of part.inputs) if (!inputs.has(name)) inputs.set(name, what);
  }
  return { path, head, body, values, inputs };
}

/**
 * The script kjx writes: the head, one `KJX_NAME=value` line per declared value
 * (in declaration order, each value quoted for sh), then the body. `compact` is
 * for a script sent as a command, whose length counts: it leaves out the head and
 * every comment line (a file with a here-document is refused, whose lines are data).
 * @throws KjxError INTERNAL when a declared value is not given or a given one is not declared
 */
export function renderSh(file: ShFile, values: ShValues, o: { compact?: boolean } = {}): string {
  const missing = [...file.values.keys()].filter((k) => values[k] === undefined);
  const extra = Object.keys(values).filter((k) => !file.values.has(k));
  if (missing.length > 0) throw internal(`no value for ${missing.join(', ')}`, file.path);
  if (extra.length > 0) throw internal(`does not declare ${extra.join(', ')}`, file.path);
  const header = [...file.values.keys()].map((k) => {
    const v = values[k]!;
    if (typeof v === 'number' && !Number.isFinite(v)) throw internal(`${k} is ${v}`, file.path);
    return `${k}=${shQuote(String(v))}`;
  });
  if (!o.compact) return [...file.head, ...header, ...file.body, ''].join('\n');
  if (file.body.some((l) => l.includes('<<')))
    throw internal('has a here-document: it cannot be compact', file.path);
  return [...header, ...file.body.filter((l) => !/^\s*#/.test(l)), ''].join('\n');
}

/** Words a script splits on spaces (`for s in $KJX_NAMES`): each must be a plain word. */
export function plainWords(words: readonly string[], what: string): string {
  for (const w of words)
    if (!/^[A-Za-z0-9_./:+@%-]+$/.test(w))
      throw new KjxError('INTERNAL', `${what}: ${JSON.stringify(w)} is not a plain word`, {
        hint: 'names that reach guest scripts are checked where they are declared; report this to kjx',
      });
  return words.join(' ');
}

/** Words for `eval "set -- $KJX_ARGV"`: each quoted for sh, so any argv round-trips. */
export function shWords(words: readonly string[]): string {
  return words.map(shQuote).join(' ');
}

/**
 * Problems with a file's declarations: a `KJX_` name the body uses that is neither
 * declared nor assigned in the body, a declared input the body never uses. Empty
 * when the file is in order.
 */
export function declarationProblems(file: ShFile): string[] {
  const code = file.body.join('\n');
  const used = new Set([...code.matchAll(/\$\{?(KJX_[A-Z0-9_]+)/g)].map((m) => m[1]!));
  const assigned = new Set([...code.matchAll(/(?:^|[\s;(]|export\s+)(KJX_[A-Z0-9_]+)=/gm)].map((m) => m[1]!));
  const name = basename(file.path);
  const problems: string[] = [];
  for (const u of used)
    if (!file.values.has(u) && !file.inputs.has(u) && !assigned.has(u))
      problems.push(`${name}: uses ${u}, which it does not declare (# @value or # @input) or assign`);
  for (const decl of file.inputs.keys())
    if (!used.has(decl)) problems.push(`${name}: declares the input ${decl}, which its body never uses`);
  return problems;
}
