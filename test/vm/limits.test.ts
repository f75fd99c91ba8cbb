/** `--timeout` and `--silence` as every wait for a guest watches them (src/vm/limits.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { watchLimits } from '../../src/vm/limits.js';

const never = new Promise<'none'>(() => {});
const first = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<'none'>((r) => setTimeout(() => r('none'), ms))]);

test('the timeout counts from the start it is given, and names the flag and what was late', async () => {
  const w = watchLimits(
    { timeoutS: 1 },
    {
      startedAt: performance.now() - 900,
      lastOutputAt: () => performance.now(),
      late: 'the run did not finish',
    },
  );
  try {
    assert.deepEqual(await w.hit, {
      outcome: 'timeout',
      message: 'the run did not finish within --timeout 1s',
    });
  } finally {
    w.cancel();
  }
});

test('silence is time since the last output, wherever it came from', async () => {
  let last = performance.now();
  const w = watchLimits({ silenceS: 0.5 }, { startedAt: last, lastOutputAt: () => last, late: 'x' });
  try {
    // output keeps coming: no hit
    const ticker = setInterval(() => {
      last = performance.now();
    }, 50);
    assert.equal(await first(w.hit, 1200), 'none');
    clearInterval(ticker);
    const h = await w.hit;
    assert.equal(h.outcome, 'silence');
    assert.match(h.message, /^no output from the guest for 0\.5s \(--silence\)/);
  } finally {
    w.cancel();
  }
});

test('no limits, zero silence, or cancelled: nothing fires', async () => {
  const none = watchLimits({}, { startedAt: 0, lastOutputAt: () => 0, late: 'x' });
  const zero = watchLimits({ silenceS: 0 }, { startedAt: 0, lastOutputAt: () => 0, late: 'x' });
  const cancelled = watchLimits(
    { timeoutS: 0.2 },
    { startedAt: performance.now(), lastOutputAt: () => 0, late: 'x' },
  );
  cancelled.cancel();
  assert.equal(await first(Promise.race([none.hit, zero.hit, cancelled.hit, never]), 500), 'none');
  none.cancel();
  zero.cancel();
});
