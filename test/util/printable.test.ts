/** Names from images are printed with control characters escaped. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { printable, printableMessage } from '../../src/util/printable.js';

test('escape sequences, line breaks and bidi overrides are written as escapes', () => {
  assert.equal(printable('a\x1b[2Jb\nc'), 'a\\x1b[2Jb\\nc');
  assert.equal(printable('tab\there\r\x7f\x9b'), 'tab\\there\\r\\x7f\\x9b');
  assert.equal(printable('evil\u202egpj.exe'), 'evil\\u{202e}gpj.exe');
  assert.equal(printable('back\\slash'), 'back\\\\slash');
  assert.equal(printable('/usr/lib/ordinary-name_1.2+x~y'), '/usr/lib/ordinary-name_1.2+x~y');
  assert.equal(printable('grüße/日本'), 'grüße/日本');
  assert.equal(printableMessage('line one\n  \x1b[31mred\x1b[0m'), 'line one\n  \\x1b[31mred\\x1b[0m');
});

test('nothing printable is left that could steer a terminal, and distinct names stay distinct', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
      const pa = printable(a);
      assert.doesNotMatch(pa, /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
      if (a !== b) assert.notEqual(pa, printable(b));
    }),
  );
});
