/**
 * The kernel verifier's log of a rejected program, trimmed to what a developer
 * needs: the failing instruction, the source line it came from, and the verdict.
 *
 * The log arrives on the loader's stderr: libbpf prints it between
 * `libbpf: prog 'NAME': -- BEGIN PROG LOAD LOG --` and `-- END PROG LOAD LOG --`;
 * cilium/ebpf puts it into its error (all lines with `%+v`). In the log (kernel
 * 6.1, kernel/bpf/verifier.c with BTF line info) each instruction is
 * `N: (opcode) text  ; register state`, preceded by `; source text` when its
 * source line changes (newer kernels add ` @ file.c:LINE`); the verdict follows
 * the last instruction, then `processed N insns ...`.
 *
 * Pure: text in, a record out.
 */

export interface VerifierFailure {
  /** The program libbpf named, when it did. */
  program?: string;
  /** The verifier's verdict: `R0 invalid mem access 'map_value_or_null'`. */
  error: string;
  /** The failing instruction as printed, register state left out: `8: (79) r1 = *(u64 *)(r0 +0)`. */
  instruction?: string;
  /** The source line the log shows for it (text after `; `). */
  source?: string;
  /** Where that line is: from the log (` @ file:line`) or found in the sources. */
  location?: { file: string; line: number };
  /** How many lines the whole log has (the rest stays in the tracer's stderr file). */
  logLines: number;
}

const INSN = /^\s*(\d+): \([0-9a-f]{2}\) (.*)$/;
const SOURCE = /^\s*; ?(.*)$/;
const AT_LINE = /^(.*?)\s+@\s+(\S+):(\d+)$/;
const PROCESSED = /^\s*processed \d+ insns/;

/** The log lines: libbpf's block, or else every line of the text (cilium/ebpf, others). */
function logBlock(text: string): { lines: string[]; program?: string } | undefined {
  const all = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const begin = all.findIndex((l) => /-- BEGIN PROG LOAD LOG --/.test(l));
  if (begin >= 0) {
    const prog = /prog '([^']+)'/.exec(all[begin]!)?.[1];
    let end = all.findIndex((l, i) => i > begin && /-- END PROG LOAD LOG --/.test(l));
    if (end < 0) end = all.length;
    return { lines: all.slice(begin + 1, end), ...(prog ? { program: prog } : {}) };
  }
  if (!all.some((l) => INSN.test(l))) return undefined;
  const prog = /program (\w+): load program/.exec(text)?.[1];
  return { lines: all, ...(prog ? { program: prog } : {}) };
}

/** The failure in a loader's stderr, or undefined when it holds no verifier log. */
export function findVerifierFailure(stderr: string): VerifierFailure | undefined {
  const block = logBlock(stderr);
  if (!block) return undefined;
  const { lines } = block;
  const stop = lines.findIndex((l) => PROCESSED.test(l));
  const body = stop >= 0 ? lines.slice(0, stop) : lines;
  let lastInsn = -1;
  body.forEach((l, i) => {
    if (INSN.test(l)) lastInsn = i;
  });
  // the verdict: what follows the last instruction (or, when none ran, the last line)
  const after = body
    .slice(lastInsn + 1)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !SOURCE.test(l) && !/^\d+: R\d/.test(l));
  const error =
    after.join(' ').trim() ||
    body
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1) ||
    'the verifier refused the program';
  const out: VerifierFailure = { error, logLines: lines.length };
  if (block.program) out.program = block.program;
  if (lastInsn >= 0) {
    const m = INSN.exec(body[lastInsn]!)!;
    // register state after the instruction is noise here
    out.instruction = `${m[1]}: ${body[lastInsn]!.trim()
      .slice(m[1]!.length + 2)
      .replace(/\s{2,};.*$/, '')}`;
    for (let i = lastInsn - 1; i >= 0; i--) {
      const s = SOURCE.exec(body[i]!);
      if (!s || INSN.test(body[i]!)) continue;
      const text = s[1]!.trim();
      if (text === '') continue; // an empty `;` line: the one before says where we are
      const at = AT_LINE.exec(text);
      if (at) {
        out.source = at[1]!.trim();
        out.location = { file: at[2]!, line: Number(at[3]) };
      } else out.source = text;
      break;
    }
  }
  return out;
}

/** The line of `text` that is `source` (trimmed), 1-based, when exactly one or the first is. */
export function findSourceLine(text: string, source: string): number | undefined {
  const want = source.trim();
  if (!want) return undefined;
  const i = text.split('\n').findIndex((l) => l.trim() === want);
  return i >= 0 ? i + 1 : undefined;
}

/** Add a location from the program's sources when the log gave none. */
export function locate(f: VerifierFailure, sources: { file: string; text: string }[]): VerifierFailure {
  if (f.location || !f.source) return f;
  for (const s of sources) {
    const line = findSourceLine(s.text, f.source);
    if (line) return { ...f, location: { file: s.file, line } };
  }
  return f;
}

/** The trimmed failure as lines to show. */
export function formatVerifierFailure(f: VerifierFailure): string {
  const lines: string[] = [];
  if (f.source !== undefined)
    lines.push(`${f.location ? `${f.location.file}:${f.location.line}: ` : ''}${f.source}`);
  if (f.instruction) lines.push(f.instruction);
  lines.push(f.error);
  return lines.join('\n');
}
