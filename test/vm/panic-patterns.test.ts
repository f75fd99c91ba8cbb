import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PANIC_PATTERNS } from '../../src/vm/console.js';

const isPanic = (line: string) => PANIC_PATTERNS.some((p) => p.test(line));

test('panics, oopses and BUGs end a run', () => {
  assert.ok(isPanic('[    3.1] Kernel panic - not syncing: VFS: Unable to mount root fs'));
  assert.ok(isPanic('[    2.0] Oops: 0002 [#1] PREEMPT SMP NOPTI'));
  assert.ok(isPanic('[    2.0] BUG: kernel NULL pointer dereference, address: 0000000000000000'));
  assert.ok(isPanic('[    2.1] ---[ end trace 0000000000000000 ]---'));
});

test('regression: a soft lockup report from a starved emulated vCPU is not a panic', () => {
  // seen on a 2-core host at load 18: the guest went on and its command finished
  assert.ok(!isPanic('[   48.2] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]'));
  assert.ok(!isPanic('[   60.0] BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!'));
});
