/**
 * "Throws a KjxError with code X": one way for every test to say it. A predicate
 * like `(e) => e instanceof KjxError && e.code === 'X'` fails with "The
 * validation function is expected to return true"; these fail saying what was
 * thrown instead (its class, code, message and, for a foreign error, its stack).
 *
 *   assert.throws(() => f(), kjxError('TREE_INVALID', /missing/));
 *   await assert.rejects(p, kjxError('USAGE', { message: /--accel/, hint: /tcg/ }));
 *   const e = throwsKjx(() => f(), 'SPEC_INVALID');        // the error, for more checks
 *   const e = await rejectsKjx(promise, 'VM_START');
 */
import assert from 'node:assert/strict';
import { type ErrorCode, isKjxError, type KjxError } from '../../src/util/errors.js';

/** What else the error must say. A RegExp is matched, a string must be equal. */
export interface KjxErrorExpect {
  message?: RegExp | string;
  hint?: RegExp | string;
  /** KjxError.reason (e.g. "over-budget"). */
  reason?: string;
  /** It wraps another error (`cause` is set). */
  cause?: boolean;
}

/** A RegExp alone is the message's. */
export type Expect = RegExp | KjxErrorExpect;

function describeThrown(e: unknown): string {
  if (isKjxError(e)) return `KjxError ${e.code}: ${e.message}`;
  if (e instanceof Error) return `${e.name}: ${e.message}\n${e.stack ?? ''}`;
  return `${typeof e} ${String(e)}`;
}

function check(field: string, got: string | undefined, want: RegExp | string, label: string): void {
  if (want instanceof RegExp) assert.match(got ?? '', want, `${label}: ${field} ${JSON.stringify(got)}`);
  else assert.equal(got, want, `${label}: ${field}`);
}

/**
 * Assert that `e` (what a `catch` or a validation function got) is a KjxError
 * with `code` and what `expect` says; `e` is typed as one afterwards. `what` names
 * the case in failures (for loops over cases).
 */
export function assertKjxError(
  e: unknown,
  code: ErrorCode,
  expect?: Expect,
  what?: string,
): asserts e is KjxError {
  checked(e, code, expect, what);
}

function checked(e: unknown, code: ErrorCode, expect?: Expect, what?: string): KjxError {
  const label = `${what ? `${what}: ` : ''}expected KjxError ${code}`;
  if (!isKjxError(e)) assert.fail(`${label}, got ${describeThrown(e)}`);
  assert.equal(e.code, code, `${label}, got ${describeThrown(e)}`);
  const x: KjxErrorExpect = expect instanceof RegExp ? { message: expect } : (expect ?? {});
  if (x.message !== undefined) check('message', e.message, x.message, label);
  if (x.hint !== undefined) check('hint', e.hint, x.hint, label);
  if (x.reason !== undefined) assert.equal(e.reason, x.reason, `${label}: reason (${e.message})`);
  if (x.cause !== undefined)
    assert.equal(e.cause !== undefined, x.cause, `${label}: ${x.cause ? 'a' : 'no'} cause (${e.message})`);
  return e;
}

/** The validation function of `assert.throws` / `assert.rejects` for a KjxError with `code`. */
export function kjxError(code: ErrorCode, expect?: Expect, what?: string): (e: unknown) => true {
  return (e: unknown) => {
    checked(e, code, expect, what);
    return true;
  };
}

/** Run `fn`, which must throw a KjxError with `code`; returns the error for more checks. */
export function throwsKjx(fn: () => unknown, code: ErrorCode, expect?: Expect, what?: string): KjxError {
  try {
    fn();
  } catch (e) {
    return checked(e, code, expect, what);
  }
  assert.fail(`${what ? `${what}: ` : ''}expected KjxError ${code}, but nothing was thrown`);
}

/** `throwsKjx` for a promise (or a function returning one), which must reject. */
export async function rejectsKjx(
  p: Promise<unknown> | (() => Promise<unknown>),
  code: ErrorCode,
  expect?: Expect,
  what?: string,
): Promise<KjxError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return checked(e, code, expect, what);
  }
  assert.fail(`${what ? `${what}: ` : ''}expected KjxError ${code}, but it resolved`);
}
