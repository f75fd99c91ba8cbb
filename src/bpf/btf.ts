/**
 * BTF, the BPF Type Format (Documentation/bpf/btf.rst; include/uapi/linux/btf.h):
 * read the type section of raw BTF, and render bytes of a map's key or value as JSON
 * through their type, the way `bpftool map dump` does with BTF: a struct becomes an
 * object, an array a list, a `char[16]` a string, an enum its name.
 *
 * Pure and bounded: the BTF comes from a guest (the generic loader's map dump), so
 * sizes, type counts, nesting and list lengths have limits, and anything out of
 * range is an error or shows as hex, never a read past the buffer.
 */
import { KjxError } from '../util/errors.js';
import { BTF_MAGIC } from './kernel-btf.js';

export const BTF_KIND = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

/** Limits on what a BTF blob from elsewhere may ask of us. */
const MAX_BTF_BYTES = 64 << 20;
const MAX_TYPES = 1 << 21;
const MAX_DEPTH = 24;
/** Arrays longer than this render as hex (a 64 KiB buffer is not a list of numbers anyone reads). */
const MAX_LIST = 4096;

export interface BtfMember {
  name: string;
  type: number;
  /** Offset in bits from the start of the struct. */
  bitOffset: number;
  /** Bitfield width in bits; 0 when the member is not a bitfield. */
  bitSize: number;
}

export type BtfType =
  | { kind: 'void' }
  | {
      kind: 'int';
      name: string;
      size: number;
      signed: boolean;
      char: boolean;
      bool: boolean;
      bits: number;
      bitOffset: number;
    }
  | { kind: 'ptr' | 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag'; name: string; type: number }
  | { kind: 'array'; name: string; type: number; nelems: number }
  | { kind: 'struct' | 'union'; name: string; size: number; members: BtfMember[] }
  | { kind: 'enum'; name: string; size: number; signed: boolean; values: { name: string; value: bigint }[] }
  | { kind: 'fwd' | 'func' | 'func_proto' | 'decl_tag' | 'unknown'; name: string }
  | { kind: 'var'; name: string; type: number }
  | { kind: 'datasec'; name: string; size: number; vars: { type: number; offset: number; size: number }[] }
  | { kind: 'float'; name: string; size: number };

export interface Btf {
  /** types[id]; id 0 is void. */
  types: BtfType[];
}

function fail(source: string, what: string): never {
  throw new KjxError('TRACE_PARSE', `${source}: BTF: ${what}`, {
    hint: 'the BTF came from the guest with the map dump; it is cut short or not BTF',
  });
}

/** Parse raw BTF (header, types, strings). */
export function parseBtf(raw: Buffer, source = 'btf'): Btf {
  if (raw.length > MAX_BTF_BYTES) fail(source, `${raw.length} bytes is more than kjx reads`);
  if (raw.length < 24 || raw.readUInt16LE(0) !== BTF_MAGIC) fail(source, 'no BTF header (magic 0xeb9f)');
  const hdrLen = raw.readUInt32LE(4);
  const typeOff = raw.readUInt32LE(8);
  const typeLen = raw.readUInt32LE(12);
  const strOff = raw.readUInt32LE(16);
  const strLen = raw.readUInt32LE(20);
  const tStart = hdrLen + typeOff;
  const sStart = hdrLen + strOff;
  if (hdrLen < 24 || tStart + typeLen > raw.length || sStart + strLen > raw.length)
    fail(source, 'type or string section lies outside the data');
  const str = (off: number): string => {
    if (off >= strLen) return '';
    const at = sStart + off;
    const end = raw.indexOf(0, at);
    return raw.toString('utf8', at, end < 0 || end > sStart + strLen ? sStart + strLen : end);
  };
  const types: BtfType[] = [{ kind: 'void' }];
  let p = tStart;
  const end = tStart + typeLen;
  const need = (n: number) => {
    if (p + n > end) fail(source, `type ${types.length} runs past the type section`);
  };
  while (p < end) {
    if (types.length > MAX_TYPES) fail(source, `more than ${MAX_TYPES} types`);
    need(12);
    const name = str(raw.readUInt32LE(p));
    const info = raw.readUInt32LE(p + 4);
    const sizeOrType = raw.readUInt32LE(p + 8);
    p += 12;
    const vlen = info & 0xffff;
    const kind = (info >>> 24) & 0x1f;
    const kflag = info >>> 31 === 1;
    switch (kind) {
      case BTF_KIND.INT: {
        need(4);
        const enc = raw.readUInt32LE(p);
        p += 4;
        const e = (enc >>> 24) & 0x0f;
        types.push({
          kind: 'int',
          name,
          size: sizeOrType,
          signed: (e & 1) !== 0,
          char: (e & 2) !== 0,
          bool: (e & 4) !== 0,
          bits: enc & 0xff,
          bitOffset: (enc >>> 16) & 0xff,
        });
        break;
      }
      case BTF_KIND.PTR:
      case BTF_KIND.TYPEDEF:
      case BTF_KIND.VOLATILE:
      case BTF_KIND.CONST:
      case BTF_KIND.RESTRICT:
      case BTF_KIND.TYPE_TAG: {
        const k = (
          {
            [BTF_KIND.PTR]: 'ptr',
            [BTF_KIND.TYPEDEF]: 'typedef',
            [BTF_KIND.VOLATILE]: 'volatile',
            [BTF_KIND.CONST]: 'const',
            [BTF_KIND.RESTRICT]: 'restrict',
            [BTF_KIND.TYPE_TAG]: 'type_tag',
          } as const
        )[kind];
        types.push({ kind: k, name, type: sizeOrType });
        break;
      }
      case BTF_KIND.ARRAY:
        need(12);
        types.push({ kind: 'array', name, type: raw.readUInt32LE(p), nelems: raw.readUInt32LE(p + 8) });
        p += 12;
        break;
      case BTF_KIND.STRUCT:
      case BTF_KIND.UNION: {
        need(12 * vlen);
        const members: BtfMember[] = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          const off = raw.readUInt32LE(p + 8);
          members.push({
            name: str(raw.readUInt32LE(p)),
            type: raw.readUInt32LE(p + 4),
            bitOffset: kflag ? off & 0xffffff : off,
            bitSize: kflag ? off >>> 24 : 0,
          });
        }
        types.push({ kind: kind === BTF_KIND.STRUCT ? 'struct' : 'union', name, size: sizeOrType, members });
        break;
      }
      case BTF_KIND.ENUM: {
        need(8 * vlen);
        const values = [];
        for (let i = 0; i < vlen; i++, p += 8)
          values.push({
            name: str(raw.readUInt32LE(p)),
            value: BigInt(kflag ? raw.readInt32LE(p + 4) : raw.readUInt32LE(p + 4)),
          });
        types.push({ kind: 'enum', name, size: sizeOrType, signed: kflag, values });
        break;
      }
      case BTF_KIND.ENUM64: {
        need(12 * vlen);
        const values = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          const v = (BigInt(raw.readUInt32LE(p + 8)) << 32n) | BigInt(raw.readUInt32LE(p + 4));
          values.push({ name: str(raw.readUInt32LE(p)), value: kflag ? BigInt.asIntN(64, v) : v });
        }
        types.push({ kind: 'enum', name, size: sizeOrType, signed: kflag, values });
        break;
      }
      case BTF_KIND.FWD:
        types.push({ kind: 'fwd', name });
        break;
      case BTF_KIND.FUNC:
        types.push({ kind: 'func', name });
        break;
      case BTF_KIND.FUNC_PROTO:
        need(8 * vlen);
        p += 8 * vlen;
        types.push({ kind: 'func_proto', name });
        break;
      case BTF_KIND.VAR:
        need(4);
        p += 4;
        types.push({ kind: 'var', name, type: sizeOrType });
        break;
      case BTF_KIND.DATASEC: {
        need(12 * vlen);
        const vars = [];
        for (let i = 0; i < vlen; i++, p += 12)
          vars.push({
            type: raw.readUInt32LE(p),
            offset: raw.readUInt32LE(p + 4),
            size: raw.readUInt32LE(p + 8),
          });
        types.push({ kind: 'datasec', name, size: sizeOrType, vars });
        break;
      }
      case BTF_KIND.FLOAT:
        types.push({ kind: 'float', name, size: sizeOrType });
        break;
      case BTF_KIND.DECL_TAG:
        need(4);
        p += 4;
        types.push({ kind: 'decl_tag', name });
        break;
      default:
        // an unknown kind's trailing data has an unknown size: nothing after it can be read
        fail(source, `unknown kind ${kind} at type ${types.length}`);
    }
  }
  return { types };
}

/** The type, or an error naming the id. */
export function typeOf(btf: Btf, id: number): BtfType {
  const t = btf.types[id];
  if (!t)
    throw new KjxError('TRACE_PARSE', `BTF: no type ${id}`, { hint: 'the map names a type its BTF lacks' });
  return t;
}

/** Through typedefs and qualifiers to the type that decides the layout. */
export function resolveType(btf: Btf, id: number): { id: number; type: BtfType } {
  for (let hops = 0; hops < MAX_DEPTH; hops++) {
    const t = typeOf(btf, id);
    if (
      t.kind === 'typedef' ||
      t.kind === 'volatile' ||
      t.kind === 'const' ||
      t.kind === 'restrict' ||
      t.kind === 'type_tag' ||
      t.kind === 'var'
    ) {
      id = t.type;
      continue;
    }
    return { id, type: t };
  }
  throw new KjxError('TRACE_PARSE', `BTF: type ${id} is a chain of more than ${MAX_DEPTH} typedefs`, {
    hint: 'the BTF loops',
  });
}

/** The size in bytes of a type (0 for void and functions). */
export function typeSize(btf: Btf, id: number, depth = 0): number {
  if (depth > MAX_DEPTH) return 0;
  const { type: t } = resolveType(btf, id);
  switch (t.kind) {
    case 'int':
    case 'struct':
    case 'union':
    case 'enum':
    case 'datasec':
    case 'float':
      return t.size;
    case 'ptr':
      return 8;
    case 'array':
      return t.nelems * typeSize(btf, t.type, depth + 1);
    default:
      return 0;
  }
}

/** The name a type is known by: `struct hist`, `u64`, `char[16]`. */
export function typeName(btf: Btf, id: number, depth = 0): string {
  const t = typeOf(btf, id);
  if (depth > MAX_DEPTH) return '?';
  switch (t.kind) {
    case 'void':
      return 'void';
    case 'struct':
    case 'union':
    case 'enum':
      return `${t.kind} ${t.name || '(anon)'}`;
    case 'array':
      return `${typeName(btf, t.type, depth + 1)}[${t.nelems}]`;
    case 'ptr':
      return `${typeName(btf, t.type, depth + 1)} *`;
    case 'const':
    case 'volatile':
      return `${t.kind} ${typeName(btf, t.type, depth + 1)}`;
    default:
      return 'name' in t && t.name ? t.name : t.kind;
  }
}

/** JSON for a value: numbers beyond 2^53 become decimal strings, so nothing is rounded. */
export type Rendered = null | boolean | number | string | Rendered[] | { [k: string]: Rendered };

function intValue(bytes: Buffer, at: number, size: number, signed: boolean): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]!);
  return signed ? BigInt.asIntN(size * 8, v) : v;
}

function jsonNumber(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(v)
    : v.toString();
}

const isCharLike = (t: BtfType) => t.kind === 'int' && t.size === 1 && (t.char || /char/.test(t.name));

/** Bytes of a C string (up to the first NUL) when they read as text; undefined otherwise. */
function cString(b: Buffer): string | undefined {
  const nul = b.indexOf(0);
  const s = b.subarray(0, nul < 0 ? b.length : nul);
  // bytes after the NUL must be padding, or this is binary data in a char array
  if (nul >= 0 && b.subarray(nul).some((x) => x !== 0) && s.length === 0) return undefined;
  const text = s.toString('utf8');
  return /[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text) ? undefined : text;
}

/**
 * Render `bytes[at, at+size)` as a value of type `id`. Pointers are hex addresses;
 * what cannot be rendered (functions, forward declarations, oversize arrays) is hex.
 */
export function renderValue(btf: Btf, id: number, bytes: Buffer, at = 0, depth = 0): Rendered {
  if (depth > MAX_DEPTH) return bytes.subarray(at, at + 8).toString('hex');
  const { type: t } = resolveType(btf, id);
  const size = typeSize(btf, id);
  if (at + size > bytes.length) return bytes.subarray(at).toString('hex');
  switch (t.kind) {
    case 'int': {
      if (t.size > 16 || t.size === 0) return bytes.subarray(at, at + t.size).toString('hex');
      let v = intValue(bytes, at, t.size, t.signed);
      if (t.bitOffset || (t.bits && t.bits < t.size * 8)) {
        v = (v >> BigInt(t.bitOffset)) & ((1n << BigInt(t.bits)) - 1n);
        if (t.signed) v = BigInt.asIntN(t.bits, v);
      }
      if (t.bool) return v !== 0n;
      return jsonNumber(v);
    }
    case 'enum': {
      const v = intValue(bytes, at, Math.min(t.size, 8), t.signed);
      return t.values.find((e) => e.value === v)?.name ?? jsonNumber(v);
    }
    case 'float':
      return t.size === 4
        ? bytes.readFloatLE(at)
        : t.size === 8
          ? bytes.readDoubleLE(at)
          : bytes.subarray(at, at + t.size).toString('hex');
    case 'ptr':
      return `0x${intValue(bytes, at, 8, false).toString(16)}`;
    case 'array': {
      const elem = resolveType(btf, t.type).type;
      const esize = typeSize(btf, t.type);
      if (isCharLike(elem)) {
        const s = cString(bytes.subarray(at, at + t.nelems));
        if (s !== undefined) return s;
      }
      if (t.nelems > MAX_LIST || esize === 0) return bytes.subarray(at, at + size).toString('hex');
      const out: Rendered[] = [];
      for (let i = 0; i < t.nelems; i++) out.push(renderValue(btf, t.type, bytes, at + i * esize, depth + 1));
      return out;
    }
    case 'struct':
    case 'union': {
      const out: { [k: string]: Rendered } = {};
      for (const m of t.members) {
        const v = m.bitSize
          ? renderBits(btf, m, bytes, at)
          : renderValue(btf, m.type, bytes, at + Math.floor(m.bitOffset / 8), depth + 1);
        // an anonymous struct or union member lends its fields to the parent, as in C
        if (m.name === '' && v && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, v);
        else out[m.name || `_${m.bitOffset}`] = v;
      }
      return out;
    }
    case 'datasec': {
      const out: { [k: string]: Rendered } = {};
      for (const v of t.vars) {
        const vt = typeOf(btf, v.type);
        const name = vt.kind === 'var' ? vt.name : `_${v.offset}`;
        out[name] = renderValue(btf, v.type, bytes, at + v.offset, depth + 1);
      }
      return out;
    }
    default:
      return bytes.subarray(at, at + Math.max(size, 0)).toString('hex');
  }
}

function renderBits(btf: Btf, m: BtfMember, bytes: Buffer, at: number): Rendered {
  const { type: t } = resolveType(btf, m.type);
  const signed = (t.kind === 'int' && t.signed) || (t.kind === 'enum' && t.signed);
  const first = at + Math.floor(m.bitOffset / 8);
  const span = Math.ceil(((m.bitOffset % 8) + m.bitSize) / 8);
  if (first + span > bytes.length) return null;
  let v = (intValue(bytes, first, span, false) >> BigInt(m.bitOffset % 8)) & ((1n << BigInt(m.bitSize)) - 1n);
  if (signed) v = BigInt.asIntN(m.bitSize, v);
  if (t.kind === 'enum') return t.values.find((e) => e.value === v)?.name ?? jsonNumber(v);
  if (t.kind === 'int' && t.bool) return v !== 0n;
  return jsonNumber(v);
}

/** The first type with this kind and name (`struct event`), for ring buffer records. */
export function findType(btf: Btf, kind: BtfType['kind'], name: string): number | undefined {
  const i = btf.types.findIndex((t) => t.kind === kind && 'name' in t && t.name === name);
  return i > 0 ? i : undefined;
}
