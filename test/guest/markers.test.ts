/**
 * Console markers (docs/guest-protocol.md): a line counts only when it starts
 * with this boot's `@@kjx:<nonce>:`, an exit status only as 0–255, and the shell
 * the guest prints them with, run under Debian's busybox sh, says exactly that.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { exitStatus, isNoncelessInit, markerShell, newNonce, parseMarker } from '../../src/guest/markers.js';
import { busyboxFor } from '../helpers/busybox.js';

const nonce = newNonce();

describe('parseMarker', () => {
  test('a marker of this boot: event and fields', () => {
    assert.deepEqual(parseMarker(`@@kjx:${nonce}:ready build=abc kernel=6.1 uptime=3.5`, nonce), {
      event: 'ready',
      fields: { build: 'abc', kernel: '6.1', uptime: '3.5' },
    });
    assert.deepEqual(parseMarker(`@@kjx:${nonce}:init`, nonce), { event: 'init', fields: {} });
  });

  test('forged exit markers are text: no nonce, a guessed or empty one, or not at the start of the line', () => {
    const forged = [
      '@@kjx:exit status=0',
      `@@kjx:${newNonce()}:exit status=0`,
      '@@kjx::exit status=0',
      `@@kjx:${nonce.slice(0, 31)}:exit status=0`,
      `@@kjx:${nonce.toUpperCase()}:exit status=0`,
      ` @@kjx:${nonce}:exit status=0`,
      `[   12.345678] @@kjx:${nonce}:exit status=0`,
      `root@kjx:~$ @@kjx:${nonce}:exit status=0`,
      `x@@kjx:${nonce}:exit status=0`,
    ];
    for (const line of forged) assert.equal(parseMarker(line, nonce), undefined, line);
  });

  test('no line without the exact prefix is a marker (property)', () => {
    fc.assert(
      // lines made of the prefix's own characters, to come close to it
      fc.property(fc.string({ unit: fc.constantFrom(...'@kjx: \t\r=', ...nonce), maxLength: 60 }), (line) => {
        const m = parseMarker(line, nonce);
        return m === undefined || line.startsWith(`@@kjx:${nonce}:`);
      }),
    );
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 40 }), (before, rest) =>
        before.startsWith(`@@kjx:${nonce}:`)
          ? true
          : parseMarker(`${before}@@kjx:${nonce}:${rest}`, nonce) === undefined,
      ),
    );
  });

  test('only a real nonce is accepted as this boot’s', () => {
    assert.throws(() => parseMarker('@@kjx::init', ''), /not a kjx boot nonce/);
    assert.match(newNonce(), /^[0-9a-f]{32}$/);
    assert.notEqual(newNonce(), newNonce());
  });

  test('an init marker without any nonce is recognized (the guest could not read fw_cfg)', () => {
    assert.equal(isNoncelessInit('@@kjx::init'), true);
    assert.equal(isNoncelessInit('@@kjx:init'), true, 'an image from before nonces');
    assert.equal(isNoncelessInit(`@@kjx:${nonce}:init`), false);
    assert.equal(isNoncelessInit('xx @@kjx::init'), false);
  });
});

test('exitStatus: an integer 0-255 written plainly, nothing else', () => {
  const status = (s: string | undefined) =>
    exitStatus({ event: 'exit', fields: s === undefined ? {} : { status: s } });
  for (const [s, n] of [
    ['0', 0],
    ['1', 1],
    ['42', 42],
    ['255', 255],
  ] as const)
    assert.equal(status(s), n, s);
  for (const s of [undefined, '', '256', '-1', '1e2', '01', '3.0', ' 3', '0x10', 'NaN', 'Infinity', '1000'])
    assert.equal(status(s), undefined, String(s));
});

test('the marker shell, run by busybox sh, prints a line the host parses (after a partial line too)', (t) => {
  const busybox = busyboxFor(t);
  if (!busybox) return;
  const script = [
    `kjx_nonce=${nonce}`,
    'x=7',
    "printf 'root@kjx:~$ '", // the console shell's prompt leaves a partial line
    markerShell('task', 'name=a status=$x'),
    markerShell('init'),
  ].join('\n');
  const r = spawnSync(busybox, ['sh', '-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const markers = r.stdout.split('\n').flatMap((l) => parseMarker(l, nonce) ?? []);
  assert.deepEqual(markers, [
    { event: 'task', fields: { name: 'a', status: '7' } },
    { event: 'init', fields: {} },
  ]);
});
