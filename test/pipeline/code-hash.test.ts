/**
 * kjx's code hash (part of every cache key) covers the guest's shell files: a
 * changed script must not reuse a stage cached with the old one.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { codeHashOf } from '../../src/pipeline/code-hash.js';

test('a changed guest shell file changes the code hash (it is code, like the modules)', () => {
  const root = mkdtempSync(join(tmpdir(), 'kjx-codehash-'));
  try {
    mkdirSync(join(root, 'guest', 'sh'), { recursive: true });
    writeFileSync(join(root, 'guest', 'stages.ts'), 'export const x = 1;\n');
    writeFileSync(join(root, 'guest', 'sh', 'stage2.sh'), '#!/bin/sh\necho one\n');
    const before = codeHashOf(root);
    assert.equal(codeHashOf(root), before, 'the same files, the same hash');
    writeFileSync(join(root, 'guest', 'sh', 'stage2.sh'), '#!/bin/sh\necho two\n');
    assert.notEqual(codeHashOf(root), before);
    writeFileSync(join(root, 'guest', 'notes.txt'), 'not code\n');
    const sh = codeHashOf(root);
    writeFileSync(join(root, 'guest', 'notes.txt'), 'still not code\n');
    assert.equal(codeHashOf(root), sh, 'other files are not code');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
