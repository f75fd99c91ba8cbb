/**
 * The BTF reader and renderer: fixtures built in memory (test/fixtures/btf-fixtures.ts)
 * for every kind kjx renders, hostile input (cut short, loops, unknown kinds), a
 * property for integers, and a cross-check against what bpftool reads from an object
 * clang compiled (both are test host tools: kjx doctor --install --for test).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseBtf, renderValue, resolveType, typeName, typeSize } from '../../src/bpf/btf.js';
import { elfSection } from '../../src/bpf/kernel-btf.js';
import { KjxError } from '../../src/util/errors.js';
import { BtfBuilder, programBtf } from '../fixtures/btf-fixtures.js';

describe('BTF', () => {
  test('a struct key renders as an object; its char[16] as a string', () => {
    const { btf, ids } = programBtf();
    const b = parseBtf(btf);
    const bytes = Buffer.alloc(20);
    bytes.writeUInt32LE(1234, 0);
    bytes.write('cat', 4);
    assert.deepEqual(renderValue(b, ids.key, bytes), { pid: 1234, comm: 'cat' });
    assert.equal(typeSize(b, ids.key), 20);
    assert.equal(typeName(b, ids.comm), 'char[16]');
  });

  test('integers: signed, 64-bit beyond 2^53 as decimal text, bool, bitfields', () => {
    const B = new BtfBuilder();
    const s32 = B.int('int', 4, { signed: true });
    const u64 = B.int('unsigned long', 8);
    const bool = B.int('_Bool', 1, { bool: true });
    const u8 = B.int('unsigned char', 1);
    const st = B.struct('s', 24, [
      { name: 'neg', type: s32, bits: 0 },
      { name: 'big', type: u64, bits: 64 },
      { name: 'flag', type: bool, bits: 128 },
      { name: 'lo', type: u8, bits: 136, bitSize: 3 },
      { name: 'hi', type: s32, bits: 139, bitSize: 5 },
    ]);
    const b = parseBtf(B.build());
    const bytes = Buffer.alloc(24);
    bytes.writeInt32LE(-7, 0);
    bytes.writeBigUInt64LE(2n ** 60n + 1n, 8);
    bytes[16] = 1;
    bytes[17] = 0b11111_101; // lo = 5, hi = -1 (5 bits of ones)
    assert.deepEqual(renderValue(b, st, bytes), {
      neg: -7,
      big: '1152921504606846977',
      flag: true,
      lo: 5,
      hi: -1,
    });
  });

  test('enums by name, typedefs and qualifiers seen through, pointers in hex, floats', () => {
    const B = new BtfBuilder();
    const u32 = B.int('unsigned int', 4);
    const e = B.enum('state', 4, [
      ['RUNNING', 0],
      ['SLEEPING', 1],
    ]);
    const td = B.typedef('u32', B.const(B.volatile(u32)));
    const p = B.ptr(u32);
    const f = B.float('double', 8);
    const st = B.struct('s', 24, [
      { name: 'st', type: e, bits: 0 },
      { name: 'n', type: td, bits: 32 },
      { name: 'p', type: p, bits: 64 },
      { name: 'f', type: f, bits: 128 },
    ]);
    const b = parseBtf(B.build());
    const bytes = Buffer.alloc(24);
    bytes.writeUInt32LE(1, 0);
    bytes.writeUInt32LE(42, 4);
    bytes.writeBigUInt64LE(0xffff888012345678n, 8);
    bytes.writeDoubleLE(0.5, 16);
    assert.deepEqual(renderValue(b, st, bytes), { st: 'SLEEPING', n: 42, p: '0xffff888012345678', f: 0.5 });
    assert.equal(resolveType(b, td).type.kind, 'int');
  });

  test('a global data section renders its variables by name', () => {
    const { btf, ids } = programBtf();
    const b = parseBtf(btf);
    const bytes = Buffer.alloc(24);
    bytes.writeBigUInt64LE(99n, 0);
    for (const [i, v] of [1, 2, 3, 4].entries()) bytes.writeUInt32LE(v, 8 + 4 * i);
    assert.deepEqual(renderValue(b, ids.bss, bytes), { total: 99, lat_hist: [1, 2, 3, 4] });
  });

  test('a char array holding binary data is not a string', () => {
    const { btf, ids } = programBtf();
    const b = parseBtf(btf);
    const bin = Buffer.from([1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(renderValue(b, ids.comm, bin), [1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  test('u64 values round-trip exactly (property)', () => {
    const B = new BtfBuilder();
    const u64 = B.int('u64', 8);
    const s64 = B.int('s64', 8, { signed: true });
    const b = parseBtf(B.build());
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (v) => {
        const buf = Buffer.alloc(8);
        buf.writeBigUInt64LE(v);
        assert.equal(String(renderValue(b, u64, buf)), v.toString());
        assert.equal(String(renderValue(b, s64, buf)), BigInt.asIntN(64, v).toString());
      }),
    );
  });

  test('hostile BTF is a TRACE_PARSE error, never a read past the buffer', () => {
    const bad = (buf: Buffer, re: RegExp) =>
      assert.throws(
        () => parseBtf(buf, 'guest'),
        (e: unknown) => e instanceof KjxError && e.code === 'TRACE_PARSE' && re.test(e.message),
      );
    bad(Buffer.from('not btf at all, not at all'), /no BTF header/);
    const good = programBtf().btf;
    bad(good.subarray(0, 40), /outside the data/);
    const cut = Buffer.from(good);
    cut.writeUInt32LE(cut.readUInt32LE(12) + 1000, 12); // type_len past the end
    bad(cut, /outside the data/);
    const B = new BtfBuilder();
    B.int('int', 4);
    B.unknownKind(30);
    bad(B.build(), /unknown kind 30/);
  });

  test('a typedef loop and a type id out of range are errors; oversize values render as hex', () => {
    const B = new BtfBuilder();
    const a = B.typedef('a', 2); // 1 -> 2
    B.typedef('b', a); // 2 -> 1
    const b = parseBtf(B.build());
    assert.throws(() => renderValue(b, a, Buffer.alloc(8)), /chain of more than/);
    assert.throws(() => renderValue(b, 99, Buffer.alloc(8)), /no type 99/);
    const C = new BtfBuilder();
    const u8 = C.int('u8', 1);
    const big = C.array(u8, 100_000);
    const c = parseBtf(C.build());
    const v = renderValue(c, big, Buffer.alloc(100_000, 7));
    assert.equal(typeof v, 'string');
    // a value shorter than its type: hex of what is there, no exception
    assert.equal(renderValue(c, big, Buffer.from([1, 2])), '0102');
  });

  test('cross-check: an object clang compiled reads as bpftool reads it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-btf-'));
    try {
      writeFileSync(
        join(dir, 't.bpf.c'),
        [
          'typedef unsigned int u32;',
          'typedef unsigned long long u64;',
          'struct key { u32 pid; char comm[16]; };',
          'struct flags { unsigned int a : 3, b : 5; int c; };',
          'enum color { RED = 1, BLUE = 2 };',
          'struct key k1; struct flags f1; enum color c1; u64 counter;',
          'union u { u32 x; char y[4]; } u1;',
          'int f(struct key *k) { return k->pid + f1.b + c1 + u1.x; }',
        ].join('\n'),
      );
      execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-c', 't.bpf.c', '-o', 't.o'], { cwd: dir });
      const obj = readFileSync(join(dir, 't.o'));
      const ours = parseBtf(elfSection(obj, '.BTF', 't.o')!);
      const theirs = JSON.parse(
        execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', join(dir, 't.o')], { encoding: 'utf8' }),
      ) as {
        types: {
          id: number;
          kind: string;
          name: string;
          size?: number;
          members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
          nr_elems?: number;
          type_id?: number;
        }[];
      };
      assert.equal(ours.types.length - 1, theirs.types.length);
      for (const t of theirs.types) {
        const o = ours.types[t.id]!;
        assert.equal(o.kind, t.kind.toLowerCase(), `type ${t.id}`);
        if ('name' in o && t.name !== '(anon)') assert.equal(o.name, t.name, `type ${t.id}`);
        if ((o.kind === 'struct' || o.kind === 'union') && t.members) {
          assert.equal(o.size, t.size);
          assert.deepEqual(
            o.members.map((m) => [m.name, m.type, m.bitOffset, m.bitSize]),
            t.members.map((m) => [m.name, m.type_id, m.bits_offset, m.bitfield_size ?? 0]),
          );
        }
        if (o.kind === 'array') assert.equal(o.nelems, t.nr_elems);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
