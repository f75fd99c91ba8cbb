/**
 * Compiler diagnostics (clang, gcc, go) as kjx reports them: the
 * `file:line:column: error: message` lines as the compiler printed them, and the
 * position of the first error for the KjxError. Go prints `path:line:col: message`
 * without a severity; every such line of a failed go build is an error.
 *
 * Pure: text in, records out.
 */
import type { SourcePosition } from '../util/errors.js';

export interface Diagnostics {
  /** The first error's place. */
  position?: SourcePosition;
  /** The compiler's lines worth showing: errors, warnings, their notes and source excerpts. */
  lines: string[];
  errors: number;
}

const C_DIAG = /^(.+?):(\d+):(\d+): (fatal error|error|warning|note): /;
const GO_DIAG = /^(.+?\.go):(\d+):(\d+): /;

/** At most this many lines are kept: one missing header can produce hundreds. */
const MAX_LINES = 60;

export function parseDiagnostics(
  output: string,
  kind: 'c' | 'go',
  resolveFile = (f: string) => f,
): Diagnostics {
  const lines = output.split('\n').map((l) => l.replace(/\r$/, ''));
  let position: SourcePosition | undefined;
  let errors = 0;
  const kept: string[] = [];
  for (const l of lines) {
    if (l.trim() === '') continue;
    const m = (kind === 'c' ? C_DIAG : GO_DIAG).exec(l);
    const isError = m && (kind === 'go' || /error/.test(m[4] ?? ''));
    if (isError) {
      errors++;
      position ??= { file: resolveFile(m[1]!), line: Number(m[2]), column: Number(m[3]) };
    }
    if (kept.length < MAX_LINES) kept.push(l);
  }
  if (kept.length === MAX_LINES && lines.filter((l) => l.trim()).length > MAX_LINES)
    kept.push(`... (${lines.filter((l) => l.trim()).length - MAX_LINES} more lines)`);
  return { ...(position ? { position } : {}), lines: kept, errors };
}
