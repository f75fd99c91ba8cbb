/**
 * The one subprocess adapter (execa behind it). A failure becomes a KjxError that
 * says the step, the escaped command, the exit code or signal and the tail of stderr.
 */
import { KjxError } from './errors.js';

export interface RunOptions {
  cwd?: string;
  input?: string | Buffer;
  env?: Record<string, string>;
  /** Return raw bytes on stdout instead of a string. */
  binary?: boolean;
  timeoutMs?: number;
  /** Exit codes that are not failures (besides 0). */
  okCodes?: number[];
}

export interface RunResult {
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
  exitCode: number;
}

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** The last `n` lines of a text, for error messages. */
export function tail(text: string, n = 12): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-n).join('\n');
}

// execa gives Uint8Array with encoding 'buffer' and strings otherwise
function asBuffer(v: unknown): Buffer {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return Buffer.from(String(v ?? ''));
}

/** Run a command to completion. `step` names what we were doing, for the error. */
export async function run(
  step: string,
  file: string,
  args: string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  // loaded on first use: most kjx runs (a no-op build, --help) start no subprocess
  const { execa } = await import('execa');
  const r = await execa(file, args, {
    cwd: opts.cwd,
    input: opts.input,
    env: opts.env,
    encoding: opts.binary ? 'buffer' : 'utf8',
    timeout: opts.timeoutMs,
    reject: false,
    stripFinalNewline: false,
    maxBuffer: 1024 * 1024 * 1024,
  });
  const stdoutBytes = asBuffer(r.stdout);
  const stderr = asBuffer(r.stderr).toString();
  const cmd = [file, ...args].map(quote).join(' ');
  if ((r as { code?: string }).code === 'ENOENT') {
    throw new KjxError('HOST_TOOL_MISSING', `${step}: ${file} is not installed`, {
      hint: 'run `kjx doctor` to see the apt-get line for missing host tools',
    });
  }
  const exitCode = r.exitCode ?? -1;
  const ok = exitCode === 0 || (opts.okCodes ?? []).includes(exitCode);
  if (!ok || r.timedOut || r.signal) {
    const why = r.timedOut
      ? `timed out after ${opts.timeoutMs} ms`
      : r.signal
        ? `killed by ${r.signal}`
        : `exit code ${exitCode}`;
    throw new KjxError(
      'SUBPROCESS',
      `${step}: \`${cmd}\` failed (${why})${stderr.trim() ? `:\n${tail(stderr)}` : ''}`,
      {
        cause: r,
      },
    );
  }
  return { stdout: stdoutBytes.toString(), stdoutBytes, stderr, exitCode };
}
