import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAr } from '../../src/sources/ar.js';
import { writeAr } from '../fixtures/deb-fixtures.js';
import { assertKjxError } from '../helpers/kjx-error.js';

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assertKjxError(e, 'DEB_INVALID');
    assert.match(e.message, pattern);
    return true;
  });
}

const members = [
  { name: 'debian-binary', data: Buffer.from('2.0\n') },
  { name: 'odd', data: Buffer.from('abc') }, // odd size: one pad byte follows
  { name: 'empty', data: Buffer.alloc(0) },
];

describe('parseAr', () => {
  it('round-trips members, including odd sizes and empty members', () => {
    assert.deepEqual(parseAr(writeAr(members), 'x.deb'), members);
  });

  it('strips the GNU-style trailing slash from names', () => {
    assert.deepEqual(
      parseAr(writeAr(members, { slash: true }), 'x.deb').map((m) => m.name),
      ['debian-binary', 'odd', 'empty'],
    );
  });

  it('returns an empty list for an archive with only the magic', () => {
    assert.deepEqual(parseAr(Buffer.from('!<arch>\n'), 'x.deb'), []);
  });

  it('refuses a file without the magic, naming file and offset', () => {
    rejects(
      () => parseAr(Buffer.from('PK\x03\x04 not an ar'), 'x.deb'),
      /^x\.deb: not an ar archive.* at offset 0$/,
    );
  });

  it('refuses a bad header terminator', () => {
    const ar = writeAr(members);
    ar[8 + 58] = 0x41;
    rejects(() => parseAr(ar, 'x.deb'), /x\.deb: bad member header terminator at offset 8/);
  });

  it('refuses a non-decimal size field', () => {
    const ar = writeAr(members);
    ar.write('12x4      ', 8 + 48, 'latin1');
    rejects(() => parseAr(ar, 'x.deb'), /member "debian-binary" has a bad size field "12x4" at offset 8/);
  });

  it('refuses truncation at every cut point except between members', () => {
    const ar = writeAr(members);
    // ar has no end marker: a cut between two members is a valid, shorter archive
    // (readDeb then finds required members missing).
    const boundaries = new Map<number, number>();
    for (let n = 0; n <= members.length; n++) boundaries.set(writeAr(members.slice(0, n)).length, n);
    for (let cut = 0; cut < ar.length; cut++) {
      const n = boundaries.get(cut);
      if (n === undefined) rejects(() => parseAr(ar.subarray(0, cut), 'x.deb'), /^x\.deb: .* at offset \d+$/);
      else assert.deepEqual(parseAr(ar.subarray(0, cut), 'x.deb'), members.slice(0, n));
    }
  });

  it('refuses a missing pad byte after an odd-sized last member', () => {
    const ar = writeAr([{ name: 'odd', data: Buffer.from('abc') }]);
    rejects(() => parseAr(ar.subarray(0, ar.length - 1), 'x.deb'), /missing padding byte after member "odd"/);
  });

  it('returns views into the input, not copies', () => {
    const ar = writeAr(members);
    const [first] = parseAr(ar, 'x.deb');
    assert.equal(first!.data.buffer, ar.buffer);
  });
});
