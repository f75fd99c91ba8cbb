/**
 * One QEMU process that is our child, with its serial console on a pipe: start it,
 * follow the console (console.ts: markers, panics, waits), type into it, and always
 * end it: on stop, on error, and when our own process exits. Each session makes its
 * own marker nonce unless the config brings one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { newNonce } from '../guest/markers.js';
import { KjxError } from '../util/errors.js';
import { tail } from '../util/exec.js';
import { type ConsoleFollower, followConsole, type Panic, type TimedMarker } from './console.js';
import { qemuArgv, type VmConfig } from './qemu-args.js';

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
  /** The console as followed (markers, panics, waits). */
  follower: ConsoleFollower;
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
  panic: Promise<Panic>;
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

export function startVm(config: VmConfig, opts: SessionOptions = {}): Session {
  const nonce = config.nonce ?? newNonce();
  const argv = qemuArgv({
    ...config,
    nonce,
    console: config.console.kind === 'stdio' ? config.console : { kind: 'stdio' },
  });
  installExitHook();
  const follower = followConsole({
    nonce,
    ...(opts.consoleLog ? { log: opts.consoleLog } : {}),
    ...(opts.onLine ? { onLine: opts.onLine } : {}),
  });
  const startedAt = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  let err = '';
  const decoder = new TextDecoder('utf-8');
  child.stdout!.on('data', (b: Buffer) => follower.push(decoder.decode(b, { stream: true })));
  child.stderr!.on('data', (b: Buffer) => {
    err += b.toString('utf8');
  });
  child.stdin!.on('error', () => {}); // QEMU gone: writes are moot
  const gone =
    (why?: Error) =>
    (what: string): KjxError =>
      new KjxError('VM_START', `QEMU exited before ${what}${why ? ` (${why.message})` : ''}`, {
        details: [`stderr: ${tail(err)}`, `console: ${tail(follower.text(), 20)}`],
        hint: err.trim() ? tail(err, 5) : 'see the console output above',
      });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      live.delete(child);
      follower.end(gone());
      resolve(code);
    });
    child.on('error', (e) => {
      live.delete(child);
      err += `${e.message}\n`;
      follower.end(gone(e));
      resolve(null);
    });
  });

  return {
    pid: child.pid ?? -1,
    argv,
    nonce,
    startedAt,
    follower,
    console: () => follower.text(),
    stderr: () => err,
    markers: () => follower.markers(),
    nonceMissing: () => follower.nonceMissing(),
    lastOutputAt: () => follower.lastOutputAt(),
    panic: follower.panic,
    waitForMarker: (event, timeoutMs) => follower.waitForMarker(event, timeoutMs),
    waitForLine: (re, timeoutMs) => follower.waitForLine(re, timeoutMs),
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
