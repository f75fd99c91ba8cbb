/**
 * Folded stacks, Brendan Gregg's input format for flame graphs
 * (https://github.com/brendangregg/FlameGraph, stackcollapse-*.pl): one stack per
 * line, frames root first separated by `;`, then whitespace and a sample count:
 *
 *     sshd;__libc_read;entry_SYSCALL_64;do_syscall_64;ksys_read 12
 *
 * libbpf-tools `offcputime -f` and `profile -f` print the same format with the
 * process name as the first frame (names like `kworker/u4:2-events` or `Web Content`
 * contain `-`, `/` and spaces). Frames may contain spaces; only the last
 * whitespace-separated field is the count.
 */
import { KjxError } from '../util/errors.js';

/** One call stack, root frame first, and how often it was seen (samples, or time for off-CPU). */
export interface FoldedStack {
  frames: string[];
  count: number;
}

const LINE = /^(.*\S)\s+(\d+(?:\.\d+)?)$/;

/**
 * Parse folded stacks. Blank lines are skipped; identical stacks are merged (their
 * counts added) and kept in the order they first appear. A line without a stack and a
 * count is a `TRACE_PARSE` error naming `source:line` and the line.
 */
export function parseFolded(text: string, source = 'input'): FoldedStack[] {
  const merged = new Map<string, FoldedStack>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const m = LINE.exec(line.trim());
    if (!m) throw badLine(source, i + 1, line);
    const frames = m[1]!.split(';');
    // "a;b;" (a trailing separator) names no frame; stackcollapse never writes it
    if (frames.some((f, j) => f === '' && j === frames.length - 1) || frames.join('') === '') {
      throw badLine(source, i + 1, line);
    }
    const key = frames.join(';');
    const count = Number(m[2]);
    const prev = merged.get(key);
    if (prev) prev.count += count;
    else merged.set(key, { frames, count });
  }
  return [...merged.values()];
}

function badLine(source: string, line: number, text: string): KjxError {
  const shown = text.length > 120 ? `${text.slice(0, 117)}...` : text;
  return new KjxError('TRACE_PARSE', `${source}:${line}: not a folded stack: ${JSON.stringify(shown)}`, {
    hint: 'expected "frame;frame;... COUNT" per line (stackcollapse output, or offcputime/profile -f)',
    position: { file: source, line, column: 1 },
  });
}

/** Sum of all counts (the flame graph's 100%). */
export function totalCount(stacks: FoldedStack[]): number {
  let total = 0;
  for (const s of stacks) total += s.count;
  return total;
}
