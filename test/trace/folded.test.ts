import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseFolded, totalCount } from '../../src/trace/folded.js';
import { assertKjxError } from '../helpers/kjx-error.js';

describe('parseFolded', () => {
  test('reads stackcollapse output: frames root first, count last, frames with spaces', () => {
    const text = [
      'sshd;__libc_read;entry_SYSCALL_64;ksys_read 12',
      'sshd;main;do_work(int, char const*) 3',
      '',
      'java;Interpreter;[unknown] 7',
    ].join('\n');
    assert.deepEqual(parseFolded(text), [
      { frames: ['sshd', '__libc_read', 'entry_SYSCALL_64', 'ksys_read'], count: 12 },
      { frames: ['sshd', 'main', 'do_work(int, char const*)'], count: 3 },
      { frames: ['java', 'Interpreter', '[unknown]'], count: 7 },
    ]);
  });

  test('reads offcputime -f: process names with "-", "/" and spaces, the "-" delimiter, missed stacks', () => {
    const text = [
      'kworker/u4:2-events_unbound;ret_from_fork;kthread;worker_thread;schedule;__schedule 20310',
      'Web Content;[Missed User Stack];-;entry_SYSCALL_64_after_hwframe;do_syscall_64;__x64_sys_poll 999',
      'runsv;__libc_start_main;main;poll;-;do_sys_poll;schedule_hrtimeout_range 4001',
      '',
    ].join('\r\n');
    const stacks = parseFolded(text, 'offcpu.folded');
    assert.equal(stacks.length, 3);
    assert.equal(stacks[0]!.frames[0], 'kworker/u4:2-events_unbound');
    assert.equal(stacks[1]!.frames[0], 'Web Content');
    assert.deepEqual(stacks[1]!.frames.slice(1, 3), ['[Missed User Stack]', '-']);
    assert.equal(stacks[2]!.frames.at(-1), 'schedule_hrtimeout_range');
    assert.equal(totalCount(stacks), 20310 + 999 + 4001);
  });

  test('merges duplicate stacks, keeping first-seen order', () => {
    const stacks = parseFolded('a;b 1\nc 2\na;b 5\n  \nc 1\n');
    assert.deepEqual(stacks, [
      { frames: ['a', 'b'], count: 6 },
      { frames: ['c'], count: 3 },
    ]);
  });

  test('accepts fractional counts (flamegraph.pl does) and a single frame', () => {
    assert.deepEqual(parseFolded('main 1.5\n'), [{ frames: ['main'], count: 1.5 }]);
  });

  for (const [what, line] of [
    ['no count', 'a;b;c'],
    ['a count that is not a number', 'a;b x12'],
    ['a negative count', 'a;b -3'],
    ['only a count', '42'],
    ['a trailing separator', 'a;b; 3'],
  ] as const) {
    test(`malformed input (${what}) is TRACE_PARSE naming source:line and the text`, () => {
      const text = `ok;stack 1\n\n${line}\n`;
      assert.throws(
        () => parseFolded(text, 'stacks.folded'),
        (e: unknown) => {
          assertKjxError(e, 'TRACE_PARSE');
          assert.match(e.message, /^stacks\.folded:3: /);
          assert.ok(e.message.includes(JSON.stringify(line)), e.message);
          assert.deepEqual(e.position, { file: 'stacks.folded', line: 3, column: 1 });
          assert.ok(e.hint);
          return true;
        },
      );
    });
  }

  test('an error without a source names "input"', () => {
    assert.throws(() => parseFolded('nonsense'), /^KjxError: input:1: /);
  });

  const frame = fc
    .string({ minLength: 1, maxLength: 12 })
    .filter((s) => !s.includes(';') && !s.includes('\n') && !s.includes('\r') && s.trim() === s && s !== '');
  const stack = fc.record({
    frames: fc.array(frame, { minLength: 1, maxLength: 6 }),
    count: fc.integer({ min: 0, max: 1_000_000 }),
  });

  test('property: parsing generated folded text preserves the total and every stack', () => {
    fc.assert(
      fc.property(fc.array(stack, { maxLength: 40 }), (stacks) => {
        const text = stacks.map((s) => `${s.frames.join(';')} ${s.count}`).join('\n');
        const parsed = parseFolded(text);
        assert.equal(totalCount(parsed), totalCount(stacks));
        const want = new Map<string, number>();
        for (const s of stacks) want.set(s.frames.join(';'), (want.get(s.frames.join(';')) ?? 0) + s.count);
        assert.deepEqual(new Map(parsed.map((s) => [s.frames.join(';'), s.count])), want);
      }),
    );
  });
});
