/** Wording helpers: did-you-mean, value descriptions, field paths. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  describeValue,
  formatFieldPath,
  levenshtein,
  showValue,
  suggest,
  unknownKeyMessage,
} from '../../src/spec/messages.js';

test('levenshtein', () => {
  assert.equal(levenshtein('', ''), 0);
  assert.equal(levenshtein('dropbar', 'dropbear'), 1);
  assert.equal(levenshtein('hostnme', 'hostname'), 1);
  assert.equal(levenshtein('cmdlnie', 'cmdline'), 2);
  assert.equal(levenshtein('kitten', 'sitting'), 3);
});

test('suggest: nearest within 2 edits, else a prefix, else nothing', () => {
  const keys = ['name', 'version', 'hostname', 'kernel', 'components', 'compression'];
  assert.equal(suggest('hostnme', keys), 'hostname');
  assert.equal(suggest('Kernel', keys), 'kernel');
  assert.equal(suggest('compres', keys), 'compression');
  assert.equal(suggest('comp', keys), 'components');
  assert.equal(suggest('xyz', keys), undefined);
  // One letter is two edits from many short words; that is not a suggestion.
  assert.equal(suggest('x', ['xz', 'gzip']), undefined);
});

test('unknownKeyMessage', () => {
  assert.equal(
    unknownKeyMessage('hostnme', ['hostname']),
    'unknown key "hostnme" (did you mean "hostname"?)',
  );
  assert.equal(unknownKeyMessage('zzz', ['a', 'b']), 'unknown key "zzz"; allowed here: a, b');
  assert.equal(unknownKeyMessage('zzz', []), 'unknown key "zzz"');
});

test('values in messages', () => {
  assert.equal(showValue('lzma'), '"lzma"');
  assert.equal(showValue('x'.repeat(50)), `"${'x'.repeat(40)}…"`);
  assert.equal(showValue(undefined), 'nothing');
  assert.equal(showValue(null), 'an empty value');
  assert.equal(showValue([]), 'an empty list');
  assert.equal(showValue({ a: 1 }), 'a mapping');
  assert.equal(describeValue('busybox'), 'a string ("busybox")');
  assert.equal(describeValue(42), 'a number (42)');
  assert.equal(describeValue(true), 'a boolean (true)');
  assert.equal(describeValue([1]), 'a list');
});

test('field paths', () => {
  assert.equal(formatFieldPath([]), '');
  assert.equal(formatFieldPath(['files', 0, 'path']), 'files[0].path');
  assert.equal(formatFieldPath(['kernel', 'cmdline']), 'kernel.cmdline');
  assert.equal(formatFieldPath(['my key']), '["my key"]');
});
