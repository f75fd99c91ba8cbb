/**
 * One QEMU process with its serial console on a pipe: start it, follow console
 * lines and guest markers, type into the console, and always end it — on stop, on
 * error, and when our own process exits. A kernel panic line ends the wait at once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type Marker, parseMarker } from '../guest/markers.js';
import { KjxError } from '../util/errors.js';
import { tail } from '../util/exec.js';
import { qemuArgv, type VmConfig } from './qemu-args.js';

/** Console lines that mean the guest kernel is gone or broken. */
export const PANIC_PATTERNS = [/Kernel panic - not syncing/, /\bOops: /, /\bBUG: /, /---\[ end trace/];

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // last resort: whatever path our process takes out, no QEMU outlives it
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

export interface Session {
  pid: number;
  argv: string[];
  /** Everything the console printed so far. */
  console(): string;
  /** Resolve when a marker with this event arrives (or reject on panic, exit, timeout). */
  waitForMarker(event: string, timeoutMs: number): Promise<Marker>;
  /** Resolve when a console line matches (or reject on panic, exit, timeout). */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string>;
  /** Type into the serial console. */
  write(text: string): void;
  /** Resolves with QEMU's exit code when it has exited. */
  exited: Promise<number | null>;
  /** End QEMU: SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export function startVm(config: VmConfig): Session {
  const argv = qemuArgv({ ...config, console: { kind: 'stdio' } });
  installExitHook();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  let err = '';
  let pending = '';
  const lineWaiters = new Set<(line: string | null, why?: Error) => void>();
  child.stdout!.on('data', (b: Buffer) => {
    const s = b.toString('utf8');
    out += s;
    pending += s;
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      for (const w of [...lineWaiters]) w(line);
      nl = pending.indexOf('\n');
    }
  });
  child.stderr!.on('data', (b: Buffer) => {
    err += b.toString('utf8');
  });
  child.stdin!.on('error', () => {}); // QEMU gone: writes are moot
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      live.delete(child);
      for (const w of [...lineWaiters]) w(null);
      resolve(code);
    });
    child.on('error', (e) => {
      live.delete(child);
      for (const w of [...lineWaiters]) w(null, e);
      resolve(null);
    });
  });

  const waitFor = <T>(match: (line: string) => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      // the line may already be in the log
      for (const line of out.split('\n')) {
        const m = match(line.replace(/\r$/, ''));
        if (m !== undefined) return resolve(m);
      }
      const done = (): void => {
        clearTimeout(timer);
        lineWaiters.delete(onLine);
      };
      const onLine = (line: string | null, why?: Error): void => {
        if (line === null) {
          done();
          reject(
            new KjxError('SUBPROCESS', `QEMU exited before ${what}${why ? ` (${why.message})` : ''}`, {
              details: [`stderr: ${tail(err)}`, `console: ${tail(out, 20)}`],
              hint: err.trim() ? tail(err, 5) : 'see the console output above',
            }),
          );
          return;
        }
        if (PANIC_PATTERNS.some((p) => p.test(line))) {
          done();
          reject(
            new KjxError('SUBPROCESS', `guest kernel failed before ${what}: ${line.trim()}`, {
              details: [tail(out, 30)],
            }),
          );
          return;
        }
        const m = match(line);
        if (m !== undefined) {
          done();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new KjxError('SUBPROCESS', `timed out after ${timeoutMs} ms waiting for ${what}`, {
            details: [tail(out, 30)],
          }),
        );
      }, timeoutMs);
      lineWaiters.add(onLine);
    });

  return {
    pid: child.pid ?? -1,
    argv,
    console: () => out,
    waitForMarker: (event, timeoutMs) =>
      waitFor(
        (line) => {
          const m = parseMarker(line);
          return m && m.event === event ? m : undefined;
        },
        `the guest marker "${event}"`,
        timeoutMs,
      ),
    waitForLine: (re, timeoutMs) =>
      waitFor((line) => (re.test(line) ? line : undefined), `a console line matching ${re}`, timeoutMs),
    write: (text) => {
      child.stdin!.write(text);
    },
    exited,
    async stop(graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}
