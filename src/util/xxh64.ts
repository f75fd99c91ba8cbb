/**
 * XXH64 (github.com/Cyan4973/xxHash, doc/xxhash_spec.md), the hash behind a zstd
 * frame's content checksum (RFC 8878, section 3.1.1: its low 32 bits, seed 0).
 *
 * Pure and synchronous. 64-bit lanes are kept as two uint32 halves: BigInt
 * arithmetic would be about a hundred times slower, and packages run to hundreds
 * of megabytes.
 */

// primes as [high, low] halves
const P1H = 0x9e3779b1;
const P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d;
const P2L = 0x27d4eb4f;
const P3H = 0x165667b1;
const P3L = 0x9e3779f9;
const P4H = 0x85ebca77;
const P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f;
const P5L = 0x165667c5;

// results of the helpers below (no allocation in the loop)
let rh = 0;
let rl = 0;

/** High 32 bits of the 64-bit product of two uint32. */
function mulHi(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  // every partial sum stays below 2^32, so >>> 16 is exact on them
  const mid = a1 * b0 + ((a0 * b0) >>> 16);
  const mid2 = a0 * b1 + (mid & 0xffff);
  return (a1 * b1 + (mid >>> 16) + (mid2 >>> 16)) >>> 0;
}

/** (ah,al) * (bh,bl) mod 2^64 into rh, rl. */
function mul(ah: number, al: number, bh: number, bl: number): void {
  const lo = Math.imul(al, bl) >>> 0;
  rh = (mulHi(al, bl) + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
  rl = lo;
}

/** (ah,al) + (bh,bl) mod 2^64 into rh, rl. */
function add(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  rl = lo >>> 0;
  rh = (ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** Rotate (h,l) left by r (0 < r < 32) into rh, rl. */
function rotl(h: number, l: number, r: number): void {
  rh = ((h << r) | (l >>> (32 - r))) >>> 0;
  rl = ((l << r) | (h >>> (32 - r))) >>> 0;
}

/** round(acc, input) = rotl(acc + input * P2, 31) * P1, into rh, rl. */
function round(ah: number, al: number, ih: number, il: number): void {
  mul(ih, il, P2H, P2L);
  add(ah, al, rh, rl);
  rotl(rh, rl, 31);
  mul(rh, rl, P1H, P1L);
}

/** acc = (acc ^ round(0, v)) * P1 + P4, into rh, rl. */
function mergeRound(ah: number, al: number, vh: number, vl: number): void {
  round(0, 0, vh, vl);
  mul((ah ^ rh) >>> 0, (al ^ rl) >>> 0, P1H, P1L);
  add(rh, rl, P4H, P4L);
}

/** XXH64 of `data` with seed 0, as a 16-digit hex string. */
export function xxh64Hex(data: Uint8Array): string {
  const [h, l] = xxh64(data);
  return h.toString(16).padStart(8, '0') + l.toString(16).padStart(8, '0');
}

/** XXH64 of `data` with seed 0, as [high 32 bits, low 32 bits]. */
export function xxh64(data: Uint8Array): [number, number] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const len = data.length;
  let p = 0;
  let hh: number;
  let hl: number;
  if (len >= 32) {
    // v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1
    add(P1H, P1L, P2H, P2L);
    let v1h = rh;
    let v1l = rl;
    let v2h = P2H;
    let v2l = P2L;
    let v3h = 0;
    let v3l = 0;
    add(~P1H >>> 0, ~P1L >>> 0, 0, 1);
    let v4h = rh;
    let v4l = rl;
    const limit = len - 32;
    while (p <= limit) {
      round(v1h, v1l, view.getUint32(p + 4, true), view.getUint32(p, true));
      v1h = rh;
      v1l = rl;
      round(v2h, v2l, view.getUint32(p + 12, true), view.getUint32(p + 8, true));
      v2h = rh;
      v2l = rl;
      round(v3h, v3l, view.getUint32(p + 20, true), view.getUint32(p + 16, true));
      v3h = rh;
      v3l = rl;
      round(v4h, v4l, view.getUint32(p + 28, true), view.getUint32(p + 24, true));
      v4h = rh;
      v4l = rl;
      p += 32;
    }
    rotl(v1h, v1l, 1);
    hh = rh;
    hl = rl;
    rotl(v2h, v2l, 7);
    add(hh, hl, rh, rl);
    hh = rh;
    hl = rl;
    rotl(v3h, v3l, 12);
    add(hh, hl, rh, rl);
    hh = rh;
    hl = rl;
    rotl(v4h, v4l, 18);
    add(hh, hl, rh, rl);
    mergeRound(rh, rl, v1h, v1l);
    mergeRound(rh, rl, v2h, v2l);
    mergeRound(rh, rl, v3h, v3l);
    mergeRound(rh, rl, v4h, v4l);
    hh = rh;
    hl = rl;
  } else {
    hh = P5H;
    hl = P5L;
  }
  // len < 2^53; its high half is what is left above 32 bits
  add(hh, hl, Math.floor(len / 0x100000000) >>> 0, len >>> 0);
  hh = rh;
  hl = rl;
  while (p + 8 <= len) {
    round(0, 0, view.getUint32(p + 4, true), view.getUint32(p, true));
    rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 27);
    mul(rh, rl, P1H, P1L);
    add(rh, rl, P4H, P4L);
    hh = rh;
    hl = rl;
    p += 8;
  }
  if (p + 4 <= len) {
    mul(0, view.getUint32(p, true), P1H, P1L);
    rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 23);
    mul(rh, rl, P2H, P2L);
    add(rh, rl, P3H, P3L);
    hh = rh;
    hl = rl;
    p += 4;
  }
  while (p < len) {
    mul(0, data[p]!, P5H, P5L);
    rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 11);
    mul(rh, rl, P1H, P1L);
    hh = rh;
    hl = rl;
    p++;
  }
  // avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32
  mul(hh, (hl ^ (hh >>> 1)) >>> 0, P2H, P2L);
  mul((rh ^ (rh >>> 29)) >>> 0, (rl ^ (((rh << 3) | (rl >>> 29)) >>> 0)) >>> 0, P3H, P3L);
  return [rh, (rl ^ rh) >>> 0];
}
