/**
 * Run the real `kjx` under a memory limit and measure its peak resident memory.
 *
 * The limit is RLIMIT_DATA (`prlimit --data`), not RLIMIT_AS: V8 reserves tens of
 * GiB of address space up front (pointer-compression cage, WebAssembly guard
 * regions) as inaccessible mappings, so an address-space limit stops Node before it
 * starts, while RLIMIT_DATA (Linux 4.7+) counts only private writable mappings:
 * the heap and the buffers a reader allocates. It is the kernel's hard stop, so a
 * reader that regresses fails here with an allocation error instead of pushing a
 * shared machine into swap. The peak resident set is measured separately and
 * exactly by GNU time (`%M`, the child's ru_maxrss from wait4), written to a file
 * so that kjx's own stderr stays as the user would see it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KJX, kjxEnv } from './kjx.js';

export interface BoundedResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Peak resident set size of the kjx process, in bytes. */
  peakRss: number;
  ms: number;
}

export const DATA_LIMIT = 1024 * 1024 * 1024;

export async function runKjxBounded(
  args: string[],
  o: { cwd: string; dataLimit?: number; timeoutMs: number },
): Promise<BoundedResult> {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-bounded-'));
  const peakFile = join(dir, 'peak');
  const argv = [
    `--data=${o.dataLimit ?? DATA_LIMIT}`,
    '--',
    '/usr/bin/time',
    '-f',
    '%M',
    '-o',
    peakFile,
    process.execPath,
    KJX,
    ...args,
  ];
  const t0 = performance.now();
  try {
    const child = spawn('prlimit', argv, {
      cwd: o.cwd,
      env: kjxEnv({ cwd: o.cwd }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('close', (c, s) => resolve([c, s])),
    );
    clearTimeout(timer);
    const ms = performance.now() - t0;
    // GNU time writes "Command exited with non-zero status N" before the value when it fails
    const lines = readFileSync(peakFile, 'utf8').trim().split('\n');
    const peakRss = Number(lines[lines.length - 1]) * 1024;
    return { code, signal, stdout, stderr, peakRss, ms };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
