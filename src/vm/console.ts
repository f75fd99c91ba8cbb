/**
 * The one console follower: whatever the guest prints on its serial console, from a
 * pipe (a QEMU this process runs, `session.ts`) or from a log file another QEMU
 * appends to (a detached VM, `tailConsole`), goes through here. It splits lines,
 * keeps the markers that carry this boot's nonce with their host arrival times
 * (src/guest/markers.ts, docs/guest-protocol.md), notices kernel panics and a guest
 * that cannot read its nonce, optionally copies everything to a log file, and
 * answers waits for a marker or a line.
 */
import { appendFileSync, closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { isNoncelessInit, type Marker, NONCE_MISSING_HINT, parseMarker } from '../guest/markers.js';
import { KjxError } from '../util/errors.js';
import { tail } from '../util/exec.js';

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

/** A marker and when it arrived (ms on the host's monotonic clock, `performance.now()`). */
export interface TimedMarker extends Marker {
  at: number;
}

export interface Panic {
  /** The first panic or oops line. */
  line: string;
  /** The console lines up to it. */
  excerpt: string;
}

/** The error for a guest whose /init printed its marker without a nonce. */
export function nonceMissingError(line: string): KjxError {
  return new KjxError(
    'VM_START',
    `the guest's init marker carries no boot nonce ("${line.trim()}"): it could not read fw_cfg, or the image predates nonces`,
    { hint: NONCE_MISSING_HINT },
  );
}

/** Why the console ended, as the error a wait for `what` gets. */
export type ConsoleEnd = (what: string) => KjxError;

export interface ConsoleFollowerOptions {
  /** This boot's marker nonce: only lines starting with it are markers. */
  nonce: string;
  /** Append everything the console prints to this file (created empty). */
  log?: string;
  /** Called for each complete line. */
  onLine?(line: string, at: number): void;
}

export interface ConsoleFollower {
  readonly nonce: string;
  /** Feed console text as it arrives. */
  push(text: string): void;
  /** The console's source is gone (QEMU exited): pending and later waits fail with `why`. */
  end(why: ConsoleEnd): void;
  /** Everything the console printed so far. */
  text(): string;
  /** Markers seen so far, in order (only those with this boot's nonce). */
  markers(): TimedMarker[];
  /** `performance.now()` of the last console output (of the follower's creation before any). */
  lastOutputAt(): number;
  /** Set once the guest showed it cannot read its nonce: no marker will ever come. */
  nonceMissing(): KjxError | undefined;
  /** The first panic or oops line, once one was printed. */
  panic: Promise<Panic>;
  /** Resolve when a marker with this event arrives (or reject on panic, end, timeout). */
  waitForMarker(event: string, timeoutMs: number): Promise<TimedMarker>;
  /** Resolve when a console line matches (or reject on panic, end, timeout). */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string>;
}

type Waiter = (line: string | null) => void;

export function followConsole(o: ConsoleFollowerOptions): ConsoleFollower {
  const { nonce } = o;
  if (o.log) writeFileSync(o.log, '');
  let out = '';
  let pending = '';
  let lastOutput = performance.now();
  const markers: TimedMarker[] = [];
  const waiters = new Set<Waiter>();
  let ended: ConsoleEnd | undefined;
  let noNonce: KjxError | undefined;
  let panicked = false;
  let onPanic!: (p: Panic) => void;
  const panic = new Promise<Panic>((resolve) => {
    onPanic = resolve;
  });

  const line = (l: string, at: number): void => {
    const m = parseMarker(l, nonce);
    if (m) markers.push({ ...m, at });
    // before the first real marker only /init has run in the guest: its marker
    // without a nonce means none of the guest's markers can count
    else if (markers.length === 0 && !noNonce && isNoncelessInit(l)) noNonce = nonceMissingError(l);
    if (!panicked && PANIC_PATTERNS.some((p) => p.test(l))) {
      panicked = true;
      onPanic({ line: l.trim(), excerpt: tail(out, 30) });
    }
    o.onLine?.(l, at);
    for (const w of [...waiters]) w(l);
  };

  const waitFor = <T>(
    match: (line: string) => T | undefined,
    what: string,
    timeoutMs: number,
    past: () => T | undefined,
  ): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const already = past();
      if (already !== undefined) return resolve(already);
      if (noNonce) return reject(noNonce);
      if (ended) return reject(ended(what));
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(onLine);
      };
      const onLine: Waiter = (l) => {
        if (l === null) {
          done();
          reject(ended!(what));
          return;
        }
        if (PANIC_PATTERNS.some((p) => p.test(l))) {
          done();
          reject(
            new KjxError('GUEST_PANIC', `guest kernel failed before ${what}: ${l.trim()}`, {
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
        const m = match(l);
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
      waiters.add(onLine);
    });

  return {
    nonce,
    push(text) {
      if (text === '') return;
      const now = performance.now();
      lastOutput = now;
      out += text;
      if (o.log) appendFileSync(o.log, text);
      pending += text;
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        const l = pending.slice(0, nl).replace(/\r$/, '');
        pending = pending.slice(nl + 1);
        line(l, now);
        nl = pending.indexOf('\n');
      }
    },
    end(why) {
      if (ended) return;
      ended = why;
      for (const w of [...waiters]) w(null);
    },
    text: () => out,
    markers: () => [...markers],
    lastOutputAt: () => lastOutput,
    nonceMissing: () => noNonce,
    panic,
    waitForMarker: (event, timeoutMs) =>
      waitFor(
        (l) => {
          const m = parseMarker(l, nonce);
          return m && m.event === event ? { ...m, at: performance.now() } : undefined;
        },
        `the guest marker "${event}"`,
        timeoutMs,
        () => markers.find((m) => m.event === event),
      ),
    waitForLine: (re, timeoutMs) =>
      waitFor(
        (l) => (re.test(l) ? l : undefined),
        `a console line matching ${re}`,
        timeoutMs,
        () =>
          out
            .split('\n')
            .map((l) => l.replace(/\r$/, ''))
            .find((l) => re.test(l)),
      ),
  };
}

export interface ConsoleTail {
  /** Stop reading (the file and the VM stay); waits still pending on the follower fail. */
  stop(): void;
}

/**
 * Feed `follower` from a console log another process appends to (a detached QEMU
 * writes its console to a file, so it can outlive us), reading what is new every
 * `everyMs`. When nothing new came and `alive()` says the writer is gone, the
 * follower is ended with `gone`.
 */
export function tailConsole(
  path: string,
  follower: ConsoleFollower,
  o: { alive(): boolean; gone: ConsoleEnd; everyMs?: number },
): ConsoleTail {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(64 * 1024);
  const decoder = new TextDecoder('utf-8');
  let pos = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearTimeout(timer);
    closeSync(fd);
    // nothing feeds the follower any more: a wait left pending (a boot ended by a
    // limit leaves its `ready` wait) would hold its timer, and the process, for days
    follower.end((what) => new KjxError('VM_START', `stopped following the console before ${what}`));
  };
  /** Read what is new; false once stopped meanwhile (a waiter that was answered may stop us). */
  const drain = (): boolean => {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) return true;
      pos += n;
      follower.push(decoder.decode(buf.subarray(0, n), { stream: true }));
      if (stopped) return false;
    }
  };
  const poll = (): void => {
    if (stopped || !drain()) return;
    if (!o.alive()) {
      // what it wrote between our read and its exit
      if (!drain()) return;
      follower.end(o.gone);
      stop();
      return;
    }
    // a detached boot's caller waits for the ready line: every 25 ms is a read call, not 50 ms of latency
    timer = setTimeout(poll, o.everyMs ?? 25);
  };
  poll();
  return { stop };
}
