/**
 * Suites that run every case twice, booted (`--cold`) and restored from a
 * snapshot, have a few cases that belong to one mode only: a guest that never
 * reaches ready cannot be saved, and what boots no VM needs no second run.
 */
import { type TestContext, test } from 'node:test';

export type Mode = 'cold' | 'restored';

/** `test`, registered in mode `only` and nowhere else (the other mode neither runs nor reports it). */
export function testIn(mode: Mode, only: Mode) {
  return (name: string, fn: (t: TestContext) => void | Promise<void>): void => {
    if (mode === only) test(name, fn);
  };
}
