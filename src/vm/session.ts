/**
 * One QEMU process with its serial console on a pipe: start it, follow console lines
 * and guest markers (with host arrival times), notice kernel panics, type into the
 * console, and always end it: on stop, on error, and when our own process exits.
 * Each session makes its own marker nonce: only lines carrying it are markers
 * (src/guest/markers.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { isNoncelessInit, type Marker, NONCE_MISSING_HINT, newNonce, parseMarker } from '../guest/markers.js';
import { KjxError } from '../util/errors.js';
import { tail } from '../util/exec.js';
import { qemuArgv, type VmConfig } from './qemu-args.js';

/**
 * Console lines that mean the guest kernel is gone or broken. Lockup reports are
 * not among them: an emulated vCPU on a loaded host is starved for tens of seconds
 * (the watchdog then prints "BUG: soft lockup") and the guest carries on.
 */
export const PANIC_PATTERNS = [
  /Kernel panic - not syncing/,
  /\bOops: /,
  /\bBUG: (?!soft lockup|workqueue lockup)/,
  /---\[ end trace/,
];

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

/** A marker and when it arrived (ms on the host's monotonic clock, `performance.now()`). */
export interface TimedMarker extends Marker {
  at: number;
}

export interface SessionOptions {
  /** Append everything the console prints to this file. */
  consoleLog?: string;
  /** Called for each complete console line. */
  onLine?(line: string, at: number): void;
}

export interface Session {
  pid: number;
  argv: string[];
  /** This boot's marker nonce (what a guest line must carry to count as a marker). */
  nonce: string;
  /** `performance.now()` when QEMU was spawned. */
  startedAt: number;
  /** Everything the console printed so far. */
  console(): string;
  /** Everything QEMU printed on its stderr so far. */
  stderr(): string;
  /** Markers seen so far, in order (only those with this boot's nonce). */
  markers(): TimedMarker[];
  /** Set once the guest showed it cannot read its nonce: no marker will ever come. */
  nonceMissing(): KjxError | undefined;
  /** `performance.now()` of the last console output. */
  lastOutputAt(): number;
  /** The first panic/oops line, once one was printed (with the lines before it). */
  panic: Promise<{ line: string; excerpt: string }>;
  /** Resolve when a marker with this event arrives (or reject on panic, exit, timeout). */
  waitForMarker(event: string, timeoutMs: number): Promise<TimedMarker>;
  /** Resolve when a console line matches (or reject on panic, exit, timeout). */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string>;
  /** Type into the serial console. */
  write(text: string): void;
  /** Resolves with QEMU's exit code (null when killed by a signal) once it has exited. */
  exited: Promise<number | null>;
  /** End QEMU: SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** The error for a guest whose /init printed its marker without a nonce. */
export function nonceMissingError(line: string): KjxError {
  return new KjxError(
    'VM_START',
    `the guest's init marker carries no boot nonce ("${line.trim()}"): it could not read fw_cfg, or the image predates nonces`,
    {
      hint: NONCE_MISSING_HINT,
    },
  );
}

export function startVm(config: VmConfig, opts: SessionOptions = {}): Session {
  const nonce = config.nonce ?? newNonce();
  const argv = qemuArgv({
    ...config,
    nonce,
    console: config.console.kind === 'stdio' ? config.console : { kind: 'stdio' },
  });
  installExitHook();
  if (opts.consoleLog) writeFileSync(opts.consoleLog, '');
  const startedAt = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  let err = '';
  let pending = '';
  let lastOutput = startedAt;
  const markers: TimedMarker[] = [];
  const lineWaiters = new Set<(line: string | null, why?: Error) => void>();
  let onPanic!: (p: { line: string; excerpt: string }) => void;
  const panic = new Promise<{ line: string; excerpt: string }>((resolve) => {
    onPanic = resolve;
  });
  let panicked = false;
  let noNonce: KjxError | undefined;

  child.stdout!.on('data', (b: Buffer) => {
    const s = b.toString('utf8');
    const now = performance.now();
    lastOutput = now;
    out += s;
    if (opts.consoleLog) appendFileSync(opts.consoleLog, s);
    pending += s;
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      const m = parseMarker(line, nonce);
      if (m) markers.push({ ...m, at: now });
      // before the first real marker only /init has run in the guest: its marker
      // without a nonce means none of the guest's markers can count
      else if (markers.length === 0 && !noNonce && isNoncelessInit(line)) noNonce = nonceMissingError(line);
      if (!panicked && PANIC_PATTERNS.some((p) => p.test(line))) {
        panicked = true;
        onPanic({ line: line.trim(), excerpt: tail(out, 30) });
      }
      opts.onLine?.(line, now);
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
      err += `${e.message}\n`;
      for (const w of [...lineWaiters]) w(null, e);
      resolve(null);
    });
  });

  const waitFor = <T>(
    match: (line: string) => T | undefined,
    what: string,
    timeoutMs: number,
    past?: () => T | undefined,
  ): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const already = past?.();
      if (already !== undefined) return resolve(already);
      if (noNonce) return reject(noNonce);
      const done = (): void => {
        clearTimeout(timer);
        lineWaiters.delete(onLine);
      };
      const onLine = (line: string | null, why?: Error): void => {
        if (line === null) {
          done();
          reject(
            new KjxError('VM_START', `QEMU exited before ${what}${why ? ` (${why.message})` : ''}`, {
              details: [`stderr: ${tail(err)}`, `console: ${tail(out, 20)}`],
              hint: err.trim() ? tail(err, 5) : 'see the console output above',
            }),
          );
          return;
        }
        if (PANIC_PATTERNS.some((p) => p.test(line))) {
          done();
          reject(
            new KjxError('GUEST_PANIC', `guest kernel failed before ${what}: ${line.trim()}`, {
              details: [tail(out, 30)],
            }),
          );
          return;
        }
        if (noNonce) {
          done();
          reject(noNonce);
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
          new KjxError('VM_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}`, {
            details: [tail(out, 30)],
          }),
        );
      }, timeoutMs);
      lineWaiters.add(onLine);
    });

  return {
    pid: child.pid ?? -1,
    argv,
    nonce,
    startedAt,
    console: () => out,
    stderr: () => err,
    markers: () => [...markers],
    nonceMissing: () => noNonce,
    lastOutputAt: () => lastOutput,
    panic,
    waitForMarker: (event, timeoutMs) =>
      waitFor(
        (line) => {
          const m = parseMarker(line, nonce);
          return m && m.event === event ? { ...m, at: performance.now() } : undefined;
        },
        `the guest marker "${event}"`,
        timeoutMs,
        () => markers.find((m) => m.event === event),
      ),
    waitForLine: (re, timeoutMs) =>
      waitFor(
        (line) => (re.test(line) ? line : undefined),
        `a console line matching ${re}`,
        timeoutMs,
        () =>
          out
            .split('\n')
            .map((l) => l.replace(/\r$/, ''))
            .find((l) => re.test(l)),
      ),
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
