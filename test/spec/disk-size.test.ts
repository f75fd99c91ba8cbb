/** `disk.size` and the media outputs in kjx.yaml. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSpec } from '../../src/spec/load.js';
import { kjxError } from '../helpers/kjx-error.js';

const MiB = 1024 * 1024;
const parse = (yaml: string) => parseSpec(yaml, '/p/kjx.yaml');

test('the default disk is 1 GiB and the default output the initramfs', () => {
  const s = parse('{}');
  assert.equal(s.disk.size, 1024 * MiB);
  assert.deepEqual(s.outputs, ['initramfs']);
});

test('sizes are bytes or K/M/G/T (powers of 1024), rounded up to a whole MiB', () => {
  for (const [text, bytes] of [
    ['512M', 512 * MiB],
    ['2G', 2048 * MiB],
    ['"2GiB"', 2048 * MiB],
    ['"300 MB"', 300 * MiB],
    ['200000000', 191 * MiB],
  ] as const) {
    assert.equal(parse(`disk: {size: ${text}}`).disk.size, bytes, text);
  }
});

test('bad sizes name the field and say what is expected', () => {
  for (const [text, re] of [
    ['64M', /disk\.size: expected a size from 128M to 2T, got "64M"/],
    ['lots', /disk\.size: expected a size like "512M"/],
    ['3T', /128M to 2T/],
  ] as const) {
    assert.throws(() => parse(`disk: {size: ${text}}`), kjxError('SPEC_INVALID', re), text);
  }
});

test('every media output is accepted', () => {
  assert.deepEqual(parse('outputs: [initramfs, iso, raw, qcow2, vmdk, tar]').outputs, [
    'initramfs',
    'iso',
    'raw',
    'qcow2',
    'vmdk',
    'tar',
  ]);
});
