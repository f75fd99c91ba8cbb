/**
 * The TSC rate a calibration boot reports (src/vm/tsc-rate.ts), read from the kernel's
 * console lines: what microvm boots under TCG get as `tsc_early_khz`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tscKhzFromConsole } from '../../src/vm/tsc-rate.js';

test('the processor line, with or without printk timestamps, in kHz', () => {
  assert.equal(
    tscKhzFromConsole(['tsc: Fast TSC calibration using PIT', 'tsc: Detected 2096.028 MHz processor']),
    2096028,
  );
  assert.equal(tscKhzFromConsole(['[    0.000000] tsc: Detected 3400.001 MHz processor']), 3400001);
});

test('the TSC line wins when the TSC runs at another rate than the CPU', () => {
  assert.equal(
    tscKhzFromConsole(['tsc: Detected 1800.000 MHz processor', 'tsc: Detected 2400.000 MHz TSC']),
    2400000,
  );
});

test('the refined calibration (against the HPET, a second later) wins over the early one', () => {
  assert.equal(
    tscKhzFromConsole([
      'tsc: Detected 2094.393 MHz processor',
      'clocksource: Switched to clocksource tsc-early',
      'tsc: Refined TSC clocksource calibration: 2095.991 MHz',
    ]),
    2095991,
  );
});

test('no line, a line in the middle of others, or an impossible rate: no rate', () => {
  assert.equal(tscKhzFromConsole([]), undefined);
  assert.equal(tscKhzFromConsole(['clocksource: tsc-early: mask: 0xffffffffffffffff']), undefined);
  assert.equal(tscKhzFromConsole(['echo tsc: Detected 2096.028 MHz processor']), undefined);
  assert.equal(tscKhzFromConsole(['tsc: Detected 0.001 MHz processor']), undefined);
  assert.equal(tscKhzFromConsole(['tsc: Detected 99999.999 MHz processor']), undefined);
  assert.equal(tscKhzFromConsole(['tsc: Detected 2096 MHz processor']), undefined);
  assert.equal(
    tscKhzFromConsole(['tsc: Refined TSC clocksource calibration: 2096.000 MHz; rm -rf /']),
    undefined,
  );
});
