/**
 * Copying files out of an ephemeral VM: the stream the guest's copy-out.sh sends
 * over `kjx.files` read back (whole and one byte at a time, and every way a guest can
 * get it wrong), and the script itself under shellcheck and busybox `sh`. The whole
 * path through a real guest is in test/vm/launch.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CopiedFile, copyOutList, copyOutParser, copyOutScript } from '../../src/guest/copy-out.js';
import { busyboxFor } from '../helpers/busybox.js';
import { needsTool } from '../helpers/prereq.js';

const SCRIPT = fileURLToPath(new URL('../../src/guest/sh/copy-out.sh', import.meta.url));

/** Parse `stream` for `count` files, fed whole or byte by byte; the files' bytes and the results. */
function parse(stream: Buffer, count: number, bytewise: boolean): { files: string[]; results: CopiedFile[] } {
  const files = Array.from({ length: count }, () => '');
  const p = copyOutParser(count, (i, b) => {
    files[i] += b.toString('latin1');
  });
  if (bytewise) for (let i = 0; i < stream.length; i++) p.push(stream.subarray(i, i + 1));
  else p.push(stream);
  return { files, results: p.end() };
}

describe('copyOutParser', () => {
  for (const bytewise of [false, true]) {
    const how = bytewise ? 'one byte at a time' : 'whole';
    test(`files, an empty one and a missing one, ${how}`, () => {
      const r = parse(Buffer.from('5\nhello0\n-\n3\na\nb'), 4, bytewise);
      assert.deepEqual(r.results, [
        { ok: true, size: 5 },
        { ok: true, size: 0 },
        { ok: false, why: 'not a regular file the guest could read' },
        { ok: true, size: 3 },
      ]);
      assert.deepEqual(r.files, ['hello', '', '', 'a\nb']);
    });

    test(`a file cut short, and the ones that never came, ${how}`, () => {
      const r = parse(Buffer.from('2\nok10\nabc'), 3, bytewise);
      assert.deepEqual(r.results[0], { ok: true, size: 2 });
      assert.deepEqual(r.results[1], { ok: false, why: 'cut short (3 of 10 bytes arrived)' });
      assert.equal(r.results[2]!.ok, false);
    });

    test(`a file that grew while it was sent fails, and so does everything after it, ${how}`, () => {
      // the guest said 2 bytes, then sent 4: the next "header" is the file's tail
      const r = parse(Buffer.from('2\nabcd\n1\nx'), 2, bytewise);
      assert.deepEqual(r.results[0], {
        ok: false,
        why: 'it changed while it was sent (more bytes than its size)',
      });
      assert.deepEqual(r.results[1], { ok: false, why: 'the guest sent a damaged header' });
    });

    test(`bytes after the last file fail the last file, ${how}`, () => {
      const r = parse(Buffer.from('1\nab'), 1, bytewise);
      assert.equal(r.results[0]!.ok, false);
    });

    test(`a header longer than any size is refused without reading on, ${how}`, () => {
      const r = parse(Buffer.from(`${'9'.repeat(40)}\n`), 1, bytewise);
      assert.deepEqual(r.results, [{ ok: false, why: 'the guest sent a damaged header' }]);
    });
  }

  test('the list takes absolute paths only, one a line', () => {
    assert.equal(copyOutList(['/a b', '/c']), '/a b\n/c\n');
    assert.throws(() => copyOutList(['rel']), /absolute guest path/);
    assert.throws(() => copyOutList(['/a\n/b']), /absolute guest path/);
  });
});

describe('copy-out.sh', () => {
  test('passes shellcheck as POSIX sh', { skip: needsTool('shellcheck') }, () => {
    const r = spawnSync('shellcheck', ['-s', 'sh', SCRIPT], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(copyOutScript().startsWith('#!/bin/sh\n'), true);
  });

  test("under busybox sh without the port: the command's output and status are kept, and it says why nothing is copied", (t) => {
    const busybox = busyboxFor(t);
    if (!busybox) return;
    const r = spawnSync(busybox, ['sh', SCRIPT, 'sh', '-c', 'echo out; echo err >&2; exit 7'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 7);
    assert.equal(r.stdout, 'out\n');
    assert.match(r.stderr, /^err\nkjx: no virtio-serial port kjx\.files; no file is copied out\n$/);
  });
});
