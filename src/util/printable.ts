/**
 * Names and link targets from images are data someone else chose. Printed as they
 * are, a file called "a\x1b[2Jb" clears the terminal and "a\nb" forges a line of
 * output, so every name kjx prints from an image goes through `printable`: C0 and
 * C1 control characters, DEL, and the Unicode line separators and bidirectional
 * overrides (which reorder what a terminal shows) are written as escapes, and a
 * backslash is doubled so that an escape cannot be faked by the name itself.
 */

const NAMED: Record<string, string> = { '\n': '\\n', '\t': '\\t', '\r': '\\r', '\\': '\\\\' };
const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_KEEP_LINES =
  /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
}

/** `s` with every character that could steer a terminal or forge a line written as an escape. */
export function printable(s: string): string {
  return s.replace(UNSAFE, escapeChar);
}

/**
 * A message for the terminal: like `printable`, but its own line breaks and tabs
 * stay (messages end with the tail of a tool's output) and backslashes are kept.
 * The net under every error message; names inside messages use `printable`.
 */
export function printableMessage(s: string): string {
  return s.replace(UNSAFE_KEEP_LINES, escapeChar);
}
