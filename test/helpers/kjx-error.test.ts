import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KjxError } from '../../src/util/errors.js';
import { assertKjxError, kjxError, rejectsKjx, throwsKjx } from './kjx-error.js';

const boom = () => {
  throw new KjxError('USAGE', '--accel x: expected auto, kvm or tcg', {
    hint: 'use tcg',
    reason: 'bad-accel',
  });
};

/** The AssertionError an expectation raised, so its message can be checked. */
function failure(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof assert.AssertionError, `not an AssertionError: ${String(e)}`);
    return e.message;
  }
  assert.fail('the expectation passed');
}

describe('kjx-error helpers', () => {
  it('pass for the code, message, hint and reason asked for, and return the error', () => {
    assert.throws(boom, kjxError('USAGE'));
    assert.throws(boom, kjxError('USAGE', /--accel/));
    assert.throws(
      boom,
      kjxError('USAGE', { message: /kvm/, hint: 'use tcg', reason: 'bad-accel', cause: false }),
    );
    assert.equal(throwsKjx(boom, 'USAGE').hint, 'use tcg');
  });

  it('fail naming what was thrown instead: another code, another class, nothing', () => {
    assert.match(
      failure(() => throwsKjx(boom, 'SPEC_INVALID')),
      /expected KjxError SPEC_INVALID, got KjxError USAGE: --accel x/,
    );
    assert.match(
      failure(() =>
        throwsKjx(() => {
          throw new TypeError('x is undefined');
        }, 'USAGE'),
      ),
      /expected KjxError USAGE, got TypeError: x is undefined/,
    );
    assert.match(
      failure(() => throwsKjx(() => 1, 'USAGE', undefined, 'case 3')),
      /^case 3: expected KjxError USAGE, but nothing was thrown/,
    );
  });

  it('fail on a message, hint, reason or cause that is not the one asked for', () => {
    assert.match(
      failure(() => assertKjxError(new KjxError('USAGE', 'a'), 'USAGE', /b/)),
      /message "a"/,
    );
    assert.match(
      failure(() => assertKjxError(new KjxError('USAGE', 'a'), 'USAGE', { hint: /h/ })),
      /hint/,
    );
    assert.match(
      failure(() => assertKjxError(new KjxError('USAGE', 'a'), 'USAGE', { reason: 'r' })),
      /reason/,
    );
    assert.match(
      failure(() => assertKjxError(new KjxError('USAGE', 'a'), 'USAGE', { cause: true })),
      /a cause/,
    );
  });

  it('rejectsKjx takes a promise or a function returning one, and fails when it resolves', async () => {
    const e = await rejectsKjx(Promise.reject(new KjxError('VM_START', 'qemu died')), 'VM_START', /died/);
    assert.equal(e.message, 'qemu died');
    await rejectsKjx(async () => boom(), 'USAGE');
    await assert.rejects(rejectsKjx(Promise.resolve(1), 'USAGE'), /expected KjxError USAGE, but it resolved/);
  });
});
