import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseControl, parseControlStanzas } from '../../src/sources/control.js';
import { HELLO_CONTROL } from '../fixtures/deb-fixtures.js';
import { assertKjxError } from '../helpers/kjx-error.js';

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assertKjxError(e, 'DEB_INVALID');
    assert.match(e.message, pattern);
    return true;
  });
}

describe('parseControl', () => {
  it('parses fields and joins continuation lines with newlines', () => {
    assert.deepEqual(parseControl(HELLO_CONTROL), {
      Package: 'hello',
      Version: '1.0-1',
      Architecture: 'amd64',
      Maintainer: 'Test <test@example.org>',
      Description: 'a test package\nIt says hello.\n.\nTwice.',
    });
  });

  it('keeps one leading space of verbatim lines and folds Depends-like fields', () => {
    const c = parseControl('Description: x\n  verbatim\nDepends: a,\n b (>= 1),\n\tc\n');
    assert.equal(c.Description, 'x\n verbatim');
    assert.deepEqual(
      c.Depends!.split(',').map((s) => s.trim()),
      ['a', 'b (>= 1)', 'c'],
    );
  });

  it('allows empty values, colons in values, comments and CRLF line ends', () => {
    assert.deepEqual(parseControl('# comment\r\nA:\r\nB: http://x:80/\r\n'), { A: '', B: 'http://x:80/' });
  });

  it('keeps a field named __proto__ as a plain field', () => {
    const c = parseControl('__proto__: polluted\nPackage: p\n');
    assert.equal(Object.getPrototypeOf(c), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(c, '__proto__')?.value, 'polluted');
  });

  it('refuses malformed lines, naming the line', () => {
    rejects(
      () => parseControl('Package: a\nno colon here\n', 'x.deb: control'),
      /^x\.deb: control:2: expected/,
    );
    rejects(() => parseControl(' leading continuation\n'), /control:1: continuation line without a field/);
    rejects(() => parseControl('-Bad: a\n'), /control:1: expected "Field: value"/);
  });

  it('refuses duplicate fields, case-insensitively', () => {
    rejects(() => parseControl('Package: a\npackage: b\n'), /control:2: field "package" appears twice/);
  });

  it('wants exactly one stanza', () => {
    rejects(() => parseControl(''), /expected one control stanza, found 0/);
    rejects(() => parseControl('A: 1\n\nB: 2\n'), /expected one control stanza, found 2/);
  });
});

describe('parseControlStanzas', () => {
  it('splits apt-cache style output on blank lines', () => {
    const text = 'Package: a\nVersion: 1\n\n\nPackage: b\nVersion: 2\nDescription: two\n lines\n \n';
    assert.deepEqual(parseControlStanzas(text), [
      { Package: 'a', Version: '1' },
      { Package: 'b', Version: '2', Description: 'two\nlines' },
    ]);
  });

  it('allows the same field in different stanzas', () => {
    assert.equal(parseControlStanzas('A: 1\n\nA: 2\n').length, 2);
  });
});
