/** Compiler diagnostics: clang/gcc `file:line:col: error:` lines and Go's, the first error's place. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDiagnostics } from '../../src/bpf/diagnostics.js';

test('clang: errors counted, the first one placed, notes and excerpts kept', () => {
  const out = [
    "count.bpf.c:6:8: error: redefinition of 'key'",
    'struct key { u32 pid; char comm[16]; };',
    '       ^',
    './vmlinux.h:3859:8: note: previous definition is here',
    "count.bpf.c:21:5: error: no member named 'pid' in 'struct key'",
    'count.bpf.c:30:1: warning: unused variable',
    '2 errors generated.',
  ].join('\n');
  const d = parseDiagnostics(out, 'c');
  assert.equal(d.errors, 2);
  assert.deepEqual(d.position, { file: 'count.bpf.c', line: 6, column: 8 });
  assert.equal(d.lines.length, 7);
});

test('gcc: "In file included from" and fatal errors', () => {
  const d = parseDiagnostics(
    [
      'In file included from top.c:3:',
      'top.skel.h:25:17: error: unknown type name ‘u64’',
      'x.c:1:10: fatal error: nope.h: No such file or directory',
    ].join('\n'),
    'c',
  );
  assert.equal(d.errors, 2);
  assert.deepEqual(d.position, { file: 'top.skel.h', line: 25, column: 17 });
});

test('go: every file:line:col line of a failed build is an error, named where the user keeps it', () => {
  const d = parseDiagnostics(
    '# kjx.local/gotop\n./main.go:12:5: undefined: foo\n',
    'go',
    (f) => `gotop/${f.replace(/^\.\//, '')}`,
  );
  assert.equal(d.errors, 1);
  assert.deepEqual(d.position, { file: 'gotop/main.go', line: 12, column: 5 });
});

test('a flood of diagnostics is cut at 60 lines, and says how many more', () => {
  const out = Array.from({ length: 100 }, (_, i) => `a.c:${i + 1}:1: error: x`).join('\n');
  const d = parseDiagnostics(out, 'c');
  assert.equal(d.errors, 100);
  assert.equal(d.lines.length, 61);
  assert.equal(d.lines.at(-1), '... (40 more lines)');
});
