/**
 * Wording of spec problems. Zod's default messages are written for programmers
 * ("Invalid input: expected string, received number"); people editing kjx.yaml
 * should read what was expected and what was found, in YAML words (list, mapping),
 * with a "did you mean" when a name is one typo away from a known one.
 *
 * Pure functions only: the schema uses them for its own messages, `load.ts` for the
 * error map it passes to every parse.
 */
import type { z } from 'zod';

/** Longest string quoted verbatim in a message; longer ones are cut with "…". */
const MAX_SHOWN = 40;

/** A value as it appears in a message: strings quoted, containers by kind. */
export function showValue(value: unknown): string {
  if (typeof value === 'string') {
    const cut = value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value;
    return JSON.stringify(cut);
  }
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return Object.keys(value).length === 0 ? 'an empty mapping' : 'a mapping';
  return String(value);
}

/** What kind of YAML value this is, with the value itself for scalars. */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `a string (${showValue(value)})`;
    case 'number':
      return `a number (${value})`;
    case 'boolean':
      return `a boolean (${value})`;
    default:
      return showValue(value);
  }
}

/** `expected <what>, got <found>`: the one shape of every validation message. */
export function expected(what: string, found: unknown, kind: 'value' | 'type' = 'value'): string {
  return `expected ${what}, got ${kind === 'type' ? describeValue(found) : showValue(found)}`;
}

/** Zod's `expected` type names in YAML words. */
const TYPE_NOUNS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  tuple: 'a list',
  record: 'a mapping',
};

function typeNoun(zodType: string): string {
  return TYPE_NOUNS[zodType] ?? zodType;
}

/** Edit distance (insert, delete, substitute; each costs 1). */
export function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The known name `input` most likely meant: the nearest within 2 edits (but never
 * one that shares almost nothing with a very short input), else the first one that
 * starts with it ("comp" → "compression").
 */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = levenshtein(input.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best !== undefined && bestDistance <= 2 && bestDistance < input.length) return best;
  if (input.length >= 2) return candidates.find((c) => c.toLowerCase().startsWith(input.toLowerCase()));
  return undefined;
}

/** ` (did you mean "x"?)` or empty. */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const s = suggest(input, candidates);
  return s === undefined ? '' : ` (did you mean ${JSON.stringify(s)}?)`;
}

/** The message for one key the schema does not know at that level. */
export function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const hint = didYouMean(key, allowed);
  if (hint !== '') return `unknown key ${JSON.stringify(key)}${hint}`;
  if (allowed.length === 0) return `unknown key ${JSON.stringify(key)}`;
  return `unknown key ${JSON.stringify(key)}; allowed here: ${allowed.join(', ')}`;
}

/** `files[0].path`, `kernel.cmdline`; odd keys in brackets so the path stays readable. */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg))
      out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/**
 * The error map passed to every spec parse: wording for the issues zod raises on
 * its own (types, enums, sizes). Messages the schema sets itself (formats, custom
 * checks) take precedence over this map.
 */
export const specErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return `missing, expected ${typeNoun(issue.expected)}`;
      const message = expected(typeNoun(issue.expected), issue.input, 'type');
      // YAML reads `version: 1.0` or `hostname: 42` as numbers; quoting is the fix.
      if (
        issue.expected === 'string' &&
        (typeof issue.input === 'number' || typeof issue.input === 'boolean')
      ) {
        return `${message}; put it in quotes to make it text`;
      }
      return message;
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => String(v));
      const what = values.length === 1 ? JSON.stringify(values[0]) : `one of ${values.join(', ')}`;
      const hint = typeof issue.input === 'string' ? didYouMean(issue.input, values) : '';
      return `${expected(what, issue.input)}${hint}`;
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'array')
        return expected(`at least ${min} item${min === 1 ? '' : 's'}`, issue.input);
      if (issue.origin === 'string') return expected('a non-empty string', issue.input);
      return expected(`a number ${issue.inclusive ? '≥' : '>'} ${min}`, issue.input);
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'array')
        return expected(`at most ${max} item${max === 1 ? '' : 's'}`, issue.input);
      if (issue.origin === 'string') return expected(`at most ${max} characters`, issue.input);
      return expected(`a number ${issue.inclusive ? '≤' : '<'} ${max}`, issue.input);
    }
    case 'invalid_format':
      return expected(
        issue.pattern ? `a string matching ${issue.pattern}` : `a valid ${issue.format}`,
        issue.input,
      );
    default:
      return undefined;
  }
};
