import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatTable } from '../../src/trace/table.js';

describe('formatTable', () => {
  test('per-process counts: text left, numbers right, dashes under headers', () => {
    const rows = [
      { comm: 'sshd', pid: 412, count: 4096 },
      { comm: 'kworker/u4:2', pid: 20, count: 7 },
      { comm: 'runsv', pid: 1, count: 120 },
    ];
    assert.equal(
      formatTable(rows, [
        { key: 'comm', header: 'COMM' },
        { key: 'pid', header: 'PID' },
        { key: 'count', header: 'COUNT' },
      ]),
      [
        'COMM          PID  COUNT',
        '------------  ---  -----',
        'sshd          412   4096',
        'kworker/u4:2   20      7',
        'runsv           1    120',
      ].join('\n'),
    );
  });

  test('missing cells are empty, no trailing spaces, explicit alignment wins', () => {
    const out = formatTable(
      [{ syscall: 'read', count: 10 }, { syscall: 'openat' }],
      [
        { key: 'syscall', align: 'right' },
        { key: 'count', header: 'n' },
      ],
    );
    assert.equal(out, ['syscall   n', '-------  --', '   read  10', ' openat'].join('\n'));
    for (const line of out.split('\n')) assert.equal(line, line.trimEnd());
  });

  test('no rows: header and dashes; newlines in a cell do not break the layout', () => {
    assert.equal(formatTable([], [{ key: 'comm' }]), 'comm\n----');
    assert.equal(formatTable([{ a: 'x\ny' }], [{ key: 'a' }]), 'a\n---\nx y');
  });

  test('width counts code points, so accented and astral names line up', () => {
    const out = formatTable(
      [
        { n: 'café', v: 1 },
        { n: '𝔵', v: 22 },
      ],
      [{ key: 'n' }, { key: 'v' }],
    );
    assert.deepEqual(out.split('\n'), ['n      v', '----  --', 'café   1', '𝔵     22']);
  });
});
