import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type ElfInfo, EM, ET, isElf, parseElf } from '../../src/rootfs/elf.js';
import { isKjxError } from '../../src/util/errors.js';
import { buildElf, buildElfWithLayout } from '../fixtures/elf-fixtures.js';
import { assertKjxError } from '../helpers/kjx-error.js';
import { needs } from '../helpers/prereq.js';

/** Parse or throw ELF_INVALID; any other outcome fails the test. */
function parseOrInvalid(data: Buffer): ElfInfo | undefined {
  try {
    return parseElf(data, 'fuzz');
  } catch (e) {
    if (isKjxError(e) && e.code === 'ELF_INVALID' && e.message.startsWith('fuzz: ')) return undefined;
    throw e;
  }
}

function assertInvalid(data: Buffer, pattern: RegExp): void {
  assert.throws(
    () => parseElf(data, '/usr/bin/x'),
    (e: unknown) => {
      assertKjxError(e, 'ELF_INVALID', /^\/usr\/bin\/x: /);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

const full = {
  interp: '/lib64/ld-linux-x86-64.so.2',
  needed: ['libfoo.so.1', 'libc.so.6'],
  soname: 'libapp.so.1',
  rpath: '/opt/r',
  runpath: '$ORIGIN/../lib:/opt/x',
};

describe('parseElf', () => {
  for (const cls of [32, 64] as const) {
    for (const endian of ['little', 'big'] as const) {
      it(`reads ELF${cls} ${endian}-endian: header, PT_INTERP and the dynamic segment`, () => {
        const machine = cls === 64 ? EM.AARCH64 : EM.ARM;
        const info = parseElf(buildElf({ ...full, class: cls, endian, machine, flags: 0x400 }), 'f');
        assert.deepEqual(info, {
          class: cls,
          endian,
          type: ET.DYN,
          machine,
          flags: 0x400,
          ...full,
        });
      });
    }
  }

  it('reads an ET_EXEC with a non-zero load base', () => {
    const info = parseElf(buildElf({ type: ET.EXEC, needed: ['libc.so.6'] }), 'f');
    assert.equal(info.type, ET.EXEC);
    assert.deepEqual(info.needed, ['libc.so.6']);
  });

  it('leaves absent fields absent', () => {
    const info = parseElf(buildElf({ needed: ['libc.so.6'] }), 'f');
    assert.deepEqual(Object.keys(info).sort(), ['class', 'endian', 'flags', 'machine', 'needed', 'type']);
  });

  it('a static binary has no interpreter and needs nothing', () => {
    const info = parseElf(buildElf({ type: ET.EXEC }), 'busybox');
    assert.equal(info.interp, undefined);
    assert.deepEqual(info.needed, []);
  });

  it('an empty dynamic segment (only DT_STRTAB, DT_STRSZ, DT_NULL) is fine', () => {
    assert.deepEqual(parseElf(buildElf({ dynamic: true }), 'f').needed, []);
  });

  it('stops at DT_NULL: entries after it are ignored', () => {
    const { data, layout } = buildElfWithLayout({ needed: ['liba.so'] });
    // Make the first entry DT_NULL: the DT_NEEDED behind it no longer counts.
    data.writeBigUInt64LE(0n, layout.dynOff);
    assert.deepEqual(parseElf(data, 'f').needed, []);
  });

  it('rejects non-ELF input', () => {
    assertInvalid(Buffer.from('#!/bin/sh\necho hi\n'), /not an ELF file/);
    assertInvalid(Buffer.alloc(0), /not an ELF file/);
  });

  it('rejects an unknown class, data encoding or version', () => {
    const bad = (i: number, v: number) => {
      const d = buildElf({ needed: ['x'] });
      d[i] = v;
      return d;
    };
    assertInvalid(bad(4, 3), /unknown ELF class 3/);
    assertInvalid(bad(5, 0), /unknown ELF data encoding 0/);
    assertInvalid(bad(6, 2), /version 2/);
  });

  it('rejects a truncated header', () => {
    assertInvalid(buildElf().subarray(0, 10), /truncated ELF identification/);
    assertInvalid(buildElf().subarray(0, 40), /truncated ELF header \(40 of 64 bytes\)/);
    assertInvalid(buildElf({ class: 32 }).subarray(0, 51), /truncated ELF header \(51 of 52 bytes\)/);
  });

  it('rejects a program header table beyond the end of the file', () => {
    const d = buildElf({ needed: ['x'] });
    d.writeUInt16LE(0xfff0, 56); // e_phnum
    assertInvalid(d, /program header table .* lies outside the file/);
  });

  it('rejects a 64-bit offset that would wrap', () => {
    const d = buildElf({ needed: ['x'] });
    d.writeBigUInt64LE(0xffffffffffffffc0n, 32); // e_phoff
    assertInvalid(d, /program header table/);
  });

  it('rejects e_phentsize smaller than a program header', () => {
    const d = buildElf({ needed: ['x'] });
    d.writeUInt16LE(8, 54);
    assertInvalid(d, /e_phentsize 8/);
  });

  it('rejects PN_XNUM without section headers', () => {
    const d = buildElf({ needed: ['x'] });
    d.writeUInt16LE(0xffff, 56);
    assertInvalid(d, /PN_XNUM/);
  });

  it('rejects an unterminated or empty PT_INTERP', () => {
    const { data, layout } = buildElfWithLayout({ interp: '/lib/ld.so' });
    data[layout.interpOff + '/lib/ld.so'.length] = 0x41;
    assertInvalid(data, /PT_INTERP string is not NUL-terminated/);
    const e = buildElfWithLayout({ interp: '/lib/ld.so' });
    e.data[e.layout.interpOff] = 0;
    assertInvalid(e.data, /PT_INTERP string is empty/);
  });

  it('rejects DT_STRTAB outside every PT_LOAD (it is an address, not an offset)', () => {
    const { data, layout } = buildElfWithLayout({ needed: ['libc.so.6'] });
    // Rewrite DT_STRTAB (entry 1) to the string table's *file offset*: a classic mistake.
    data.writeBigUInt64LE(BigInt(layout.strOff), layout.dynOff + 1 * 16 + 8);
    assertInvalid(data, /DT_STRTAB address 0x[0-9a-f]+ is in no PT_LOAD segment/);
  });

  it('rejects a string offset outside DT_STRSZ and an unterminated string', () => {
    const { data, layout } = buildElfWithLayout({ needed: ['libc.so.6'] });
    data.writeBigUInt64LE(BigInt(layout.strSize), layout.dynOff + 8); // DT_NEEDED's d_val
    assertInvalid(data, /DT_NEEDED string offset \d+ is outside the string table/);

    const u = buildElfWithLayout({ needed: ['libc.so.6'] });
    u.data[u.layout.strOff + u.layout.strSize - 1] = 0x41; // the last NUL
    assertInvalid(u.data, /DT_NEEDED string at offset 1 is not NUL-terminated/);
  });

  it('rejects DT_NEEDED without DT_STRTAB', () => {
    const { data, layout } = buildElfWithLayout({ needed: ['libc.so.6'] });
    data.writeBigUInt64LE(10n, layout.dynOff + 16); // DT_STRTAB -> DT_STRSZ
    assertInvalid(data, /no DT_STRTAB/);
  });

  it('every truncation of a fixture either parses or throws ELF_INVALID', () => {
    for (const cls of [32, 64] as const) {
      for (const endian of ['little', 'big'] as const) {
        const d = buildElf({ ...full, class: cls, endian });
        for (let n = 0; n < d.length; n++) {
          // Cutting anywhere loses part of PT_DYNAMIC at least: none of these can parse.
          assert.equal(parseOrInvalid(d.subarray(0, n)), undefined, `ELF${cls} ${endian} cut at ${n}`);
        }
        assert.ok(parseOrInvalid(d));
      }
    }
  });

  it('property: random truncation and byte corruption never escape as another error', () => {
    const seeds = [
      buildElf(full),
      buildElf({ ...full, class: 32 }),
      buildElf({ ...full, endian: 'big' }),
      buildElf({ type: ET.EXEC }),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.option(fc.nat(), { nil: undefined }),
        (seed, edits, cut) => {
          const d = Buffer.from(seed);
          for (const [at, v] of edits) d[at % d.length] = v;
          parseOrInvalid(cut === undefined ? d : d.subarray(0, cut % (d.length + 1)));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('property: random bytes after the magic never escape as another error', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.constantFrom(1, 2),
        fc.constantFrom(1, 2),
        (rest, c, e) => {
          parseOrInvalid(Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, c, e, 1]), rest]));
        },
      ),
      { numRuns: 2000 },
    );
  });

  const ls = needs(
    'an ELF /bin/ls',
    !(existsSync('/bin/ls') && isElf(readFileSync('/bin/ls'))) && 'none here',
  );
  it('reads the host /bin/ls (a real linker output)', { skip: ls }, () => {
    const info = parseElf(readFileSync('/bin/ls'), '/bin/ls');
    assert.match(info.interp ?? '', /ld-linux/);
    assert.ok(info.needed.includes('libc.so.6'), `needed: ${info.needed.join(', ')}`);
  });

  const libc = ['/lib/x86_64-linux-gnu/libc.so.6', '/lib/aarch64-linux-gnu/libc.so.6'].find(existsSync);
  it('reads the SONAME of the host libc', {
    skip: needs('a multiarch libc.so.6', !libc && 'none here'),
  }, () => {
    assert.ok(libc);
    assert.equal(parseElf(readFileSync(libc), libc).soname, 'libc.so.6');
  });
});

describe('isElf', () => {
  it('looks at the magic only', () => {
    assert.equal(isElf(buildElf()), true);
    assert.equal(isElf(Buffer.from([0x7f, 0x45, 0x4c, 0x46])), true);
    assert.equal(isElf(Buffer.from([0x7f, 0x45, 0x4c])), false);
    assert.equal(isElf(Buffer.from('!<arch>\n')), false);
  });
});
