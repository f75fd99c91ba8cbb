/**
 * A program's maps, from the loader's hex dump (loader-output.ts) to values people
 * read: keys and values rendered through the map's BTF types (btf.ts), global
 * variables (`.bss`, `.data`, `.rodata`) as named values, and what kjx draws:
 *
 * - **log2 histograms** (the libbpf-tools and libbpf-bootstrap layout): a value struct
 *   with an integer array member `slots` (one histogram per key, like runqlat -P), an
 *   integer array value in a map whose name says `hist`, a map named `*hist*` with an
 *   integer key (the slot) and an integer value, or a global integer array named
 *   `*hist*` or `slots`. Slot i counts values in [2^i, 2^(i+1)), slot 0 also 0; the
 *   unit comes from the name (`_ns`, `_us`, `_ms`), else `value`.
 * - **counters**: global integer variables.
 * - **tables**: every other map with entries, one row per entry, key and value
 *   fields as columns, biggest first.
 *
 * Pure: records in, records out.
 */

import { type Btf, findType, parseBtf, type Rendered, renderValue, resolveType } from '../bpf/btf.js';
import type { MapDump, MapsDump } from '../bpf/loader-output.js';
import type { Log2Hist } from './histogram.js';
import type { Cell } from './table.js';

export interface RenderedEntry {
  key: Rendered;
  value: Rendered;
  /** Per-CPU maps: the value on each CPU (`value` is their sum when they are numbers). */
  cpus?: Rendered[];
}

export interface RenderedMap {
  /** The map's name; a global data section's own name (`.bss`). */
  name: string;
  type: string;
  keyType?: string;
  valueType?: string;
  /** Maps with readable entries; undefined for ring buffers and the like. */
  entries?: RenderedEntry[];
  /** Global data sections: variable name -> value. */
  variables?: Record<string, Rendered>;
  truncated: boolean;
}

export interface ProgTable {
  map: string;
  columns: string[];
  rows: Record<string, Cell>[];
}

export interface RenderedProgram {
  maps: RenderedMap[];
  histograms: Log2Hist[];
  counters: Record<string, Rendered>;
  tables: ProgTable[];
}

/** A value of `size` bytes without BTF: an integer when it is one, else hex. */
function plain(bytes: Buffer): Rendered {
  if (bytes.length === 4) return bytes.readUInt32LE(0);
  if (bytes.length === 8) {
    const v = bytes.readBigUInt64LE(0);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  }
  if (bytes.length === 1) return bytes[0]!;
  if (bytes.length === 2) return bytes.readUInt16LE(0);
  return bytes.toString('hex');
}

function render(btf: Btf | undefined, typeId: number, bytes: Buffer): Rendered {
  return btf && typeId ? renderValue(btf, typeId, bytes) : plain(bytes);
}

const num = (v: Rendered): number | undefined =>
  typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : undefined;

/** The sum of per-CPU values when they are numbers, else the list. */
function sumCpus(values: Rendered[]): Rendered {
  const ns = values.map(num);
  if (ns.every((n) => n !== undefined)) {
    const big = values.reduce<bigint>((a, v) => a + BigInt(typeof v === 'number' ? v : String(v)), 0n);
    return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big.toString();
  }
  return values;
}

/** Per-CPU integer arrays (histograms) add element-wise. */
function sumCpuArrays(values: Rendered[]): Rendered {
  if (values.every((v) => Array.isArray(v) && v.every((x) => num(x) !== undefined))) {
    const arrays = values as Rendered[][];
    return arrays[0]!.map((_, i) => arrays.reduce((a, arr) => a + (num(arr[i]!) ?? 0), 0));
  }
  return sumCpus(values);
}

function renderMap(m: MapDump, btfs: Map<number, Btf>): RenderedMap {
  const btf = btfs.get(m.btf_id);
  const vt = btf && m.btf_value_type_id ? resolveType(btf, m.btf_value_type_id).type : undefined;
  const out: RenderedMap = { name: m.name, type: m.type, truncated: m.truncated === true };
  if (btf && m.btf_key_type_id) out.keyType = typeLabel(btf, m.btf_key_type_id);
  if (btf && m.btf_value_type_id) out.valueType = typeLabel(btf, m.btf_value_type_id);
  if (m.entries === null) return out;
  if (vt?.kind === 'datasec') {
    out.name = vt.name || m.name;
    const [first] = m.entries;
    out.variables = first
      ? (renderValue(btf!, m.btf_value_type_id, Buffer.from(first[1], 'hex')) as Record<string, Rendered>)
      : {};
    return out;
  }
  out.entries = m.entries.map(([k, v]) => {
    const key = render(btf, m.btf_key_type_id, Buffer.from(k, 'hex'));
    const bytes = Buffer.from(v, 'hex');
    if (!m.cpus) return { key, value: render(btf, m.btf_value_type_id, bytes) };
    const stride = Math.ceil(m.value_size / 8) * 8;
    const cpus: Rendered[] = [];
    for (let c = 0; c < m.cpus && (c + 1) * stride <= bytes.length; c++)
      cpus.push(render(btf, m.btf_value_type_id, bytes.subarray(c * stride, c * stride + m.value_size)));
    return { key, value: sumCpuArrays(cpus), cpus };
  });
  return out;
}

function typeLabel(btf: Btf, id: number): string {
  const t = btf.types[id];
  if (!t) return '?';
  if ((t.kind === 'struct' || t.kind === 'union' || t.kind === 'enum') && t.name)
    return `${t.kind} ${t.name}`;
  if ('name' in t && t.name) return t.name;
  if (t.kind === 'array') return `${typeLabel(btf, t.type)}[${t.nelems}]`;
  return t.kind;
}

/** `hist_us` -> usecs; the unit libbpf-tools would print. */
export function unitFromName(name: string): string {
  const n = name.toLowerCase();
  if (/(^|_)ns($|_)|nsec/.test(n)) return 'nsecs';
  if (/(^|_)us($|_)|usec/.test(n)) return 'usecs';
  if (/(^|_)ms($|_)|msec/.test(n)) return 'msecs';
  return 'value';
}

/** Log2 slots as buckets, up to the last non-empty one (as print_log2_hist prints them). */
export function slotsToHist(slots: number[], unit: string, label?: string): Log2Hist {
  let last = 0;
  slots.forEach((c, i) => {
    if (c > 0) last = i;
  });
  const buckets = slots.slice(0, last + 1).map((count, i) => {
    const high = 2 ** (i + 1) - 1;
    const low = i === 0 ? 0 : 2 ** i;
    return { low, high, count };
  });
  return { unit, buckets, ...(label !== undefined ? { label } : {}) };
}

const intArray = (v: Rendered): number[] | undefined =>
  Array.isArray(v) && v.length > 0 && v.every((x) => num(x) !== undefined)
    ? v.map((x) => num(x)!)
    : undefined;

/** `pid = 12, comm = sh`: a key (and the value's other fields) as a histogram label. */
function labelOf(parts: Record<string, Rendered>): string | undefined {
  const fields = Object.entries(parts).filter(([, v]) => v !== null && typeof v !== 'object');
  return fields.length ? fields.map(([k, v]) => `${k} = ${String(v)}`).join(', ') : undefined;
}

function histogramsOf(m: RenderedMap): Log2Hist[] | undefined {
  if (!m.entries) return undefined;
  const named = /hist/i.test(m.name);
  const unit = unitFromName(m.name);
  // a value struct with `slots`
  const first = m.entries[0]?.value;
  if (first && typeof first === 'object' && !Array.isArray(first) && intArray(first.slots ?? null)) {
    return m.entries.map((e) => {
      const v = e.value as Record<string, Rendered>;
      const { slots, ...rest } = v;
      const key = e.key && typeof e.key === 'object' && !Array.isArray(e.key) ? e.key : { key: e.key };
      const label =
        m.entries!.length > 1 || Object.keys(rest).length ? labelOf({ ...key, ...rest }) : undefined;
      return slotsToHist(intArray(slots!)!, unit, label);
    });
  }
  if (!named) return undefined;
  // a value that is an integer array: one histogram per key
  if (first !== undefined && intArray(first)) {
    return m.entries.map((e) =>
      slotsToHist(intArray(e.value)!, unit, m.entries!.length > 1 ? labelOf({ key: e.key }) : undefined),
    );
  }
  // integer key = slot, integer value = count
  if (
    m.entries.length > 0 &&
    m.entries.every((e) => num(e.key) !== undefined && num(e.value) !== undefined)
  ) {
    const slots: number[] = [];
    for (const e of m.entries) {
      const k = num(e.key)!;
      if (k < 0 || k > 64) return undefined;
      slots[k] = (slots[k] ?? 0) + num(e.value)!;
    }
    return [
      slotsToHist(
        Array.from(slots, (c) => c ?? 0),
        unit,
      ),
    ];
  }
  return undefined;
}

/** Nested objects as `a.b` columns; lists as JSON text. */
function flatten(v: Rendered, prefix: string, out: Record<string, Cell>): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
    return;
  }
  out[prefix] = v === null ? '' : typeof v === 'number' || typeof v === 'string' ? v : JSON.stringify(v);
}

function tableOf(m: RenderedMap): ProgTable | undefined {
  if (!m.entries || m.entries.length === 0) return undefined;
  const rows = m.entries.map((e) => {
    const row: Record<string, Cell> = {};
    flatten(e.key, typeof e.key === 'object' && e.key !== null && !Array.isArray(e.key) ? '' : 'key', row);
    flatten(
      e.value,
      typeof e.value === 'object' && e.value !== null && !Array.isArray(e.value) ? '' : 'value',
      row,
    );
    return row;
  });
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  // biggest first, by the first numeric value column
  const valueCols = columns.filter((c) => rows.every((r) => typeof r[c] === 'number'));
  const by = valueCols.find((c) => c === 'value') ?? valueCols.at(-1);
  if (by) rows.sort((a, b) => Number(b[by]) - Number(a[by]));
  return { map: m.name, columns, rows };
}

/** Render a dump: every map, and the histograms, counters and tables found in them. */
export function renderProgramMaps(dump: MapsDump, source = 'maps'): RenderedProgram {
  const btfs = new Map<number, Btf>();
  for (const [id, hex] of Object.entries(dump.btf))
    btfs.set(Number(id), parseBtf(Buffer.from(hex, 'hex'), `${source}: BTF ${id}`));
  const maps = dump.maps.map((m) => renderMap(m, btfs));
  const histograms: Log2Hist[] = [];
  const counters: Record<string, Rendered> = {};
  const tables: ProgTable[] = [];
  for (const m of maps) {
    if (m.variables) {
      for (const [name, v] of Object.entries(m.variables)) {
        const arr = intArray(v);
        if (arr && /hist|^slots$/i.test(name)) histograms.push(slotsToHist(arr, unitFromName(name), name));
        else if (num(v) !== undefined) counters[name] = v;
      }
      continue;
    }
    const h = histogramsOf(m);
    if (h) {
      const labelled = h.map((x) => (x.label === undefined && maps.length > 1 ? { ...x, label: m.name } : x));
      histograms.push(...labelled);
      continue;
    }
    const t = tableOf(m);
    if (t) tables.push(t);
  }
  tables.sort((a, b) => b.rows.length - a.rows.length);
  return { maps, histograms, counters, tables };
}

/** maps.json: map name -> entries (`{key, value}`), a global data section -> its variables. */
export function mapsJson(p: RenderedProgram): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const m of p.maps) {
    if (m.variables) out[m.name] = m.variables;
    else if (m.entries) out[m.name] = m.entries;
  }
  return out;
}

/**
 * Ring buffer records through their type: `struct <map>_event`, else `struct event`
 * (libbpf-bootstrap's and cilium/ebpf's name; the program must reference it once so
 * that it is in the BTF), else hex.
 */
export function renderEvents(
  events: { map: string; data: Buffer }[],
  dump: MapsDump | undefined,
): { map: string; event: Rendered }[] {
  const btfs = Object.entries(dump?.btf ?? {}).map(([id, hex]) =>
    parseBtf(Buffer.from(hex, 'hex'), `BTF ${id}`),
  );
  const typeFor = new Map<string, { btf: Btf; id: number } | undefined>();
  const lookup = (map: string) => {
    if (!typeFor.has(map)) {
      let hit: { btf: Btf; id: number } | undefined;
      for (const name of [`${map}_event`, 'event'])
        for (const btf of btfs) {
          const id = hit ? undefined : findType(btf, 'struct', name);
          if (id) hit = { btf, id };
        }
      typeFor.set(map, hit);
    }
    return typeFor.get(map);
  };
  return events.map((e) => {
    const t = lookup(e.map);
    return {
      map: e.map,
      event:
        t && isRenderable(t.btf, t.id, e.data) ? renderValue(t.btf, t.id, e.data) : e.data.toString('hex'),
    };
  });
}

function isRenderable(btf: Btf, id: number, data: Buffer): boolean {
  const t = resolveType(btf, id).type;
  return t.kind === 'struct' && t.size <= data.length;
}
