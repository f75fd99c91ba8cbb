/**
 * Parser for Debian control data (deb822): the `control` file of a .deb and the
 * multi-stanza output of `apt-cache show` / `dpkg-query`.
 *
 * Format: deb-control(5) and Debian Policy section 5.1 "Syntax of control files".
 * A stanza is a run of "Field: value" lines; a line starting with a space or tab
 * continues the previous field; stanzas are separated by blank lines; lines
 * starting with "#" are comments.
 *
 * Values: the first line's value is trimmed; each continuation line loses its one
 * leading space or tab and its trailing whitespace, and lines are joined with "\n".
 * So a Description keeps its " ." paragraph separators as "." and verbatim lines
 * (two leading spaces) keep one space, and folded fields (Depends) can be split on
 * commas after replacing "\n".
 */
import { KjxError } from '../util/errors.js';

/** One stanza: field name (as written) -> value. */
export type ControlStanza = Record<string, string>;

/**
 * Parse text that holds exactly one stanza (surrounding blank lines are fine).
 *
 * @param text the control file's content
 * @param what what to call it in error messages (e.g. "busybox.deb: control")
 * @throws KjxError DEB_INVALID on a malformed line, a duplicate field, or when the
 *   text holds zero or several stanzas
 */
export function parseControl(text: string, what = 'control'): ControlStanza {
  const stanzas = parseControlStanzas(text, what);
  if (stanzas.length !== 1) {
    throw new KjxError('DEB_INVALID', `${what}: expected one control stanza, found ${stanzas.length}`);
  }
  return stanzas[0]!;
}

/**
 * Parse text that holds any number of stanzas separated by blank lines, such as
 * `apt-cache show` output.
 *
 * @param text control data
 * @param what what to call it in error messages
 * @throws KjxError DEB_INVALID on a malformed line or a field repeated within a stanza,
 *   naming `what` and the 1-based line number
 */
export function parseControlStanzas(text: string, what = 'control'): ControlStanza[] {
  const stanzas: ControlStanza[] = [];
  let current: ControlStanza | undefined;
  let lastField: string | undefined;
  // Field names are case-insensitive (deb-control(5)), so "Package" and "package" clash.
  let seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const lineNo = i + 1;
    if (line.trim() === '') {
      current = undefined;
      lastField = undefined;
      continue;
    }
    if (line.startsWith('#')) continue;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!current || lastField === undefined) {
        throw malformed(what, lineNo, 'continuation line without a field before it');
      }
      current[lastField] += `\n${line.slice(1).trimEnd()}`;
      continue;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? '' : line.slice(0, colon);
    // deb822 field names: printable US-ASCII without space or colon, not starting with "-".
    if (!/^[!-9;-~]+$/.test(field) || field.startsWith('-')) {
      throw malformed(what, lineNo, `expected "Field: value", got "${line.slice(0, 60)}"`);
    }
    if (!current) {
      current = {};
      stanzas.push(current);
      seen = new Set();
    }
    if (seen.has(field.toLowerCase())) throw malformed(what, lineNo, `field "${field}" appears twice`);
    // defineProperty, not assignment: a field named "__proto__" must stay a plain field.
    Object.defineProperty(current, field, {
      value: line.slice(colon + 1).trim(),
      enumerable: true,
      writable: true,
      configurable: true,
    });
    seen.add(field.toLowerCase());
    lastField = field;
  }
  return stanzas;
}

function malformed(what: string, line: number, message: string): KjxError {
  return new KjxError('DEB_INVALID', `${what}:${line}: ${message}`, {
    hint: 'control data follows deb-control(5): "Field: value" lines, continuation lines start with a space',
  });
}
