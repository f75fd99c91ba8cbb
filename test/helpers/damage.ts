/**
 * Oracles for "damaged archive" properties: given an archive a fixture wrote and
 * one byte changed, what a reader must do. Where the format checks the byte (a
 * checksum, a magic, a layout field), it must refuse; where the format does not
 * (file data, padding, names GNU and pax headers carry), it must return exactly
 * what the archive now holds, never something else and never a crash. A property
 * built on these fails when a reader accepts garbage.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { TarEntry } from '../../src/sources/tar.js';
import { isKjxError } from '../../src/util/errors.js';

/** What a reader may do with one damaged archive. */
export interface Verdict<T> {
  /** Where the damage is, for messages. */
  why: string;
  /** It may refuse (with its KjxError code). */
  mayRefuse: boolean;
  /** It may accept, and then what it returned must pass this; undefined: acceptance is wrong. */
  accept?: (got: T) => void;
}

/** Run `read` on the damaged archive and hold the outcome to `v`. */
export function expectVerdict<T>(v: Verdict<T>, read: () => T, code: string, what: string): void {
  let got: T;
  try {
    got = read();
  } catch (e) {
    assert.ok(isKjxError(e), `${what} (${v.why}): expected KjxError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, `${what} (${v.why}): ${e.message}`);
    assert.ok(v.mayRefuse, `${what} (${v.why}) was refused, but the format does not check it: ${e.message}`);
    return;
  }
  assert.ok(v.accept, `${what} (${v.why}) was accepted: the reader took garbage`);
  v.accept(got);
}

/**
 * Where to damage an archive of `length` bytes: anywhere, or as often one of the
 * `hot` offsets (small regions the format checks, which uniform picks would
 * rarely hit: magics, terminators, checksum fields).
 */
export function damageAt(length: number, hot: number[]): fc.Arbitrary<number> {
  return hot.length
    ? fc.oneof(fc.nat({ max: length - 1 }), fc.constantFrom(...hot))
    : fc.nat({ max: length - 1 });
}

/** Offsets of a tar archive's checksum fields and of its end-of-archive block. */
export function tarHotSpots(tar: Buffer): number[] {
  const hot: number[] = [];
  for (let off = 0; off + BLOCK <= tar.length; ) {
    const h = tar.subarray(off, off + BLOCK);
    if (isZero(h)) {
      for (let i = 0; i < BLOCK; i += 37) hot.push(off + i);
      break;
    }
    for (let i = 148; i < 156; i++) hot.push(off + i);
    const flag = String.fromCharCode(h[156]!);
    const payload = 'xgLK07\0'.includes(flag) ? sizeOf(h) : 0;
    off += BLOCK + Math.ceil(payload / BLOCK) * BLOCK;
  }
  return hot;
}

/** A tar entry with its data copied out of the archive, for comparing. */
export const plainTar = (e: TarEntry) => ({ ...e, data: Buffer.from(e.data) });

const BLOCK = 512;
const isZero = (b: Buffer) => b.every((x) => x === 0);
/** An octal size field as a fixture writes it (the fixture uses base-256 only for ids and times). */
const sizeOf = (h: Buffer) =>
  Number.parseInt(h.toString('latin1', 124, 136).replace(/[\0 ]+$/, '') || '0', 8);

/**
 * The verdict for a tar archive written by the fixture writer (test/fixtures/
 * deb-fixtures.ts) after byte `at` became `value`, given what `parseTar` read from
 * the undamaged archive (`good`):
 *
 * - a header block: POSIX's checksum covers every byte but its own field, so any
 *   change is refused; a change inside the checksum field is refused, or (another
 *   spelling of the same number, or the signed sum GNU tar also accepts) read as before;
 * - the first end-of-archive block: it stops being one, and as a header its checksum fails;
 * - file data and its padding: not checked; the data comes back with the new byte;
 * - the data of a GNU long name/link or a pax header: not checked either; refused, or
 *   only the entry it belongs to (all after it, for a global pax header) may change,
 *   and only in what those headers set (name, link, times, ids);
 * - after the end-of-archive block: not read.
 */
export function tarVerdict(tar: Buffer, good: TarEntry[], at: number, value: number): Verdict<TarEntry[]> {
  const expected = good.map(plainTar);
  const equalTo = (want: ReturnType<typeof plainTar>[]) => (got: TarEntry[]) =>
    assert.deepEqual(got.map(plainTar), want);
  const same = (why: string): Verdict<TarEntry[]> => ({ why, mayRefuse: false, accept: equalTo(expected) });
  if (tar[at] === value) return same('unchanged');
  let off = 0;
  let entry = 0;
  for (;;) {
    const h = tar.subarray(off, off + BLOCK);
    if (h.length < BLOCK) return same('after the end (not read)');
    if (isZero(h)) {
      return at < off + BLOCK
        ? { why: 'the end-of-archive block', mayRefuse: true }
        : same('after the end-of-archive block (not read)');
    }
    const flag = String.fromCharCode(h[156]!);
    const meta = 'xgLK'.includes(flag);
    const payload = meta || flag === '0' || flag === '7' || flag === '\0' ? sizeOf(h) : 0;
    const dataStart = off + BLOCK;
    const next = dataStart + Math.ceil(payload / BLOCK) * BLOCK;
    if (at < dataStart) {
      const rel = at - off;
      return rel >= 148 && rel < 156
        ? { why: 'the checksum field', mayRefuse: true, accept: equalTo(expected) }
        : { why: `header byte ${rel} (covered by the checksum)`, mayRefuse: true };
    }
    if (at < dataStart + payload) {
      if (!meta) {
        const data = Buffer.from(expected[entry]!.data);
        data[at - dataStart] = value;
        const want = expected.map((e, i) => (i === entry ? { ...e, data } : e));
        return { why: 'file data (not checked)', mayRefuse: false, accept: equalTo(want) };
      }
      // the entries this metadata applies to: the next one, or all that follow ('g')
      const owners = (i: number) => (flag === 'g' ? i >= entry : i === entry);
      return {
        why: `data of a '${flag}' header (not checked)`,
        mayRefuse: true,
        accept: (got) => {
          assert.equal(got.length, expected.length);
          got.forEach((g, i) => {
            const p = plainTar(g);
            if (!owners(i)) assert.deepEqual(p, expected[i]);
            else {
              const { name, linkname, mtime, uid, gid, ...rest } = p;
              const { name: _n, linkname: _l, mtime: _m, uid: _u, gid: _g, ...want } = expected[i]!;
              assert.deepEqual(rest, want);
            }
          });
        },
      };
    }
    if (at < next) return same('padding after data (not checked)');
    if (!meta) entry++;
    off = next;
  }
}
