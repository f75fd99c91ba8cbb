/**
 * kjx's code hash (part of every cache key) covers the guest's shell files: a
 * changed script must not reuse a stage cached with the old one.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

test('with a memo file the hash is the same, and a changed file still changes it', () => {
  const root = mkdtempSync(join(tmpdir(), 'kjx-codehash-'));
  try {
    const memo = join(root, 'memo.json');
    mkdirSync(join(root, 'src'));
    writeFileSync(join(root, 'src', 'a.js'), 'export const a = 1;\n');
    const plain = codeHashOf(join(root, 'src'));
    assert.equal(codeHashOf(join(root, 'src'), memo), plain, 'first time: hashed and kept');
    assert.equal(codeHashOf(join(root, 'src'), memo), plain, 'second time: from the memo');
    // the memo is believed while the stamps hold: a planted hash comes back
    const kept = JSON.parse(readFileSync(memo, 'utf8'));
    writeFileSync(memo, JSON.stringify({ ...kept, hash: 'planted' }));
    assert.equal(codeHashOf(join(root, 'src'), memo), 'planted');
    // same size, new bytes: the stamp moves and the files are read again
    writeFileSync(join(root, 'src', 'a.js'), 'export const a = 2;\n');
    assert.equal(codeHashOf(join(root, 'src'), memo), codeHashOf(join(root, 'src')));
    assert.notEqual(codeHashOf(join(root, 'src'), memo), plain);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
