/**
 * The one subprocess adapter (execa behind it). A failure becomes a KjxError that
 * says the step, the escaped command, the exit code or signal and the tail of stderr.
 */

import { constants as bufferConstants } from 'node:buffer';
import { spawn, spawnSync } from 'node:child_process';
import { KjxError } from './errors.js';

/** The most one Buffer holds. */
const MAX_BUFFER = bufferConstants.MAX_LENGTH;

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

export interface FilterResult {
  /** What the tool wrote, at most `maxOutput` bytes. */
  stdout: Buffer;
  /** The tool wrote more than `maxOutput` bytes and was killed there. */
  overflow: boolean;
}

/**
 * Feed `input` to a filter (xz -dc, zstd -dc) and collect its output while it
 * streams, killing it once the output passes `maxOutput` bytes: a decompressor
 * fed a bomb stops at the cap instead of after inflating everything.
 * Synchronous, for the pure-looking readers that call it (.deb, initramfs).
 * @throws KjxError HOST_TOOL_MISSING, or SUBPROCESS with the tool's stderr when it fails
 */
export function runFilterSync(
  step: string,
  file: string,
  args: string[],
  input: Uint8Array,
  maxOutput: number,
): FilterResult {
  const r = spawnSync(file, args, {
    input,
    maxBuffer: Math.min(maxOutput + 1, MAX_BUFFER),
    killSignal: 'SIGKILL',
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 600_000,
  });
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') {
    throw new KjxError('HOST_TOOL_MISSING', `${step}: ${file} is not installed`, {
      hint: 'run `kjx doctor` to see the apt-get line for missing host tools',
    });
  }
  if (code === 'ENOBUFS') return { stdout: Buffer.alloc(0), overflow: true };
  const stderr = r.stderr?.toString() ?? '';
  if (r.error || r.status !== 0) {
    const cmd = [file, ...args].map(quote).join(' ');
    const why = r.signal
      ? `killed by ${r.signal}`
      : r.error
        ? String(r.error.message)
        : `exit code ${r.status}`;
    throw new KjxError(
      'SUBPROCESS',
      `${step}: \`${cmd}\` failed (${why})${stderr.trim() ? `:\n${tail(stderr)}` : ''}`,
      {
        cause: r.error ?? r,
      },
    );
  }
  return { stdout: r.stdout, overflow: r.stdout.length > maxOutput };
}

/**
 * `runFilterSync` without blocking and without a second copy of the output: the
 * chunks are kept as they arrive and the tool is killed as soon as they pass
 * `maxOutput`, so a bomb costs at most `maxOutput` bytes here (spawnSync holds its
 * own copy of everything it read until it returns).
 */
export async function runFilter(
  step: string,
  file: string,
  args: string[],
  input: Uint8Array,
  maxOutput: number,
): Promise<FilterResult> {
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const parts: Buffer[] = [];
  let total = 0;
  let overflow = false;
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => {
    if (overflow) return;
    total += b.length;
    if (total > maxOutput) {
      overflow = true;
      parts.length = 0; // let the chunks go before the tool has even died
      child.kill('SIGKILL');
      return;
    }
    parts.push(b);
  });
  child.stderr.on('data', (b: Buffer) => {
    if (stderr.length < 64 * 1024) stderr += b.toString();
  });
  child.stdin.on('error', () => {}); // EPIPE once the tool is gone: its status says why
  child.stdin.end(input);
  const [status, signal, error] = await new Promise<
    [number | null, NodeJS.Signals | null, Error | undefined]
  >((resolve) => {
    child.on('error', (e) => resolve([null, null, e]));
    child.on('close', (c, s) => resolve([c, s, undefined]));
  });
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new KjxError('HOST_TOOL_MISSING', `${step}: ${file} is not installed`, {
      hint: 'run `kjx doctor` to see the apt-get line for missing host tools',
    });
  }
  if (overflow) return { stdout: Buffer.alloc(0), overflow: true };
  if (error || status !== 0) {
    const cmd = [file, ...args].map(quote).join(' ');
    const why = signal ? `killed by ${signal}` : error ? error.message : `exit code ${status}`;
    throw new KjxError(
      'SUBPROCESS',
      `${step}: \`${cmd}\` failed (${why})${stderr.trim() ? `:\n${tail(stderr)}` : ''}`,
      {
        cause: error,
      },
    );
  }
  return { stdout: Buffer.concat(parts, total), overflow: false };
}
