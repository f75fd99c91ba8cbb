/**
 * A memory budget for reading one untrusted input (an image given to `kjx inspect`
 * or `kjx diff`, a local .deb): every reader that makes bytes out of it (a
 * decompressor, a file read out of a file system, an entry added to a tree)
 * charges what it is about to hold, and the input is refused once the sum passes
 * the limit, before the memory is taken.
 *
 * The default limit is proportional to what the input really occupies on disk
 * (`RATIO` times its allocated bytes, at least `FLOOR`): a kjx image holds its
 * files compressed 2-5 times, so a legitimate one stays far below it, while a
 * small file that claims gigabytes (a compression bomb, a sparse volume, a file
 * system whose files share blocks) is refused after at most `FLOOR` bytes. The
 * limit can be raised for an input known to be honest.
 */
import { type ErrorCode, KjxError } from './errors.js';

/** At least this much is allowed, whatever the input's size: every kjx image fits in it many times. */
export const FLOOR = 256 * 1024 * 1024;
/** Bytes allowed per byte the input occupies on disk. */
export const RATIO = 16;
/** What one entry of a tree (path, object, map slot) costs besides its content, roughly. */
export const ENTRY_COST = 256;

export interface Budget {
  readonly limit: number;
  used: number;
  /** The input, for messages. */
  readonly name: string;
  readonly code: ErrorCode;
  readonly hint: string;
  /** How the limit was chosen, for the message. */
  readonly why?: string;
}

export function defaultLimit(inputBytes: number): number {
  return Math.max(FLOOR, RATIO * inputBytes);
}

export function newBudget(name: string, limit: number, code: ErrorCode, hint: string): Budget {
  return { limit, used: 0, name, code, hint };
}

/** The budget of an input that occupies `inputBytes` on disk: `defaultLimit` of it. */
export function defaultBudget(name: string, inputBytes: number, code: ErrorCode, hint: string): Budget {
  return {
    ...newBudget(name, defaultLimit(inputBytes), code, hint),
    why: `${RATIO} times the ${size(inputBytes)} it takes on disk, at least ${size(FLOOR)}`,
  };
}

/** Bytes still allowed (Infinity without a budget). */
export function room(b: Budget | undefined): number {
  return b ? Math.max(0, b.limit - b.used) : Number.POSITIVE_INFINITY;
}

function size(n: number): string {
  const MiB = 1024 * 1024;
  return n >= MiB && n % MiB === 0
    ? `${n / MiB} MiB`
    : n >= 10 * MiB
      ? `${(n / MiB).toFixed(1)} MiB`
      : `${n} bytes`;
}

/** The error for `doing`, which would pass the limit. */
export function overBudget(b: Budget, doing: string): KjxError {
  return new KjxError(
    b.code,
    `${b.name}: ${doing} would take more than the ${size(b.limit)} kjx allows for reading it${b.why ? ` (${b.why})` : ''}: refused as a likely compression bomb or forged sizes`,
    { hint: b.hint, reason: 'over-budget' },
  );
}

/** Count `bytes` that `doing` is about to hold; throws (before they are taken) past the limit. */
export function charge(b: Budget | undefined, bytes: number, doing: string): void {
  if (!b) return;
  if (!(bytes >= 0) || bytes > room(b)) throw overBudget(b, doing);
  b.used += bytes;
}

/** "512M", "4G", "1048576", "2GiB" (powers of 1024) -> bytes; undefined when it is none of those. */
export function parseSize(text: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined;
}
