/**
 * What the generic loader (`kjx-bpf-run`, src/bpf/loader/kjx-bpf-run.c) prints: one
 * JSON object per line — attach results, `ready`, ring buffer records, and the map
 * dump (also what `kjx-bpf-run --dump-maps PID` prints for any other loader). Lines
 * that are not such objects are the program's own output and are kept as text.
 *
 * Pure and bounded: the text comes from a guest.
 */
import { KjxError } from '../util/errors.js';

/** One map as the loader dumps it: keys and values in hex. */
export interface MapDump {
  name: string;
  id: number;
  type: string;
  key_size: number;
  value_size: number;
  max_entries: number;
  btf_id: number;
  btf_key_type_id: number;
  btf_value_type_id: number;
  /** Per-CPU maps: how many values each entry holds (each padded to 8 bytes). */
  cpus?: number;
  /** null for types whose entries cannot be read (ring buffers, perf event arrays, ...). */
  entries: [string, string][] | null;
  truncated?: boolean;
}

export interface MapsDump {
  maps: MapDump[];
  /** Raw BTF by id, in hex. */
  btf: Record<string, string>;
}

export interface LoaderOutput {
  attached: { program: string; section: string }[];
  skipped: { program: string; section: string; error: string }[];
  ready: boolean;
  events: { map: string; data: Buffer }[];
  /** Records past the bound, counted, not kept. */
  eventsDropped: number;
  maps?: MapsDump;
  /** Lines that are not the loader's JSON (a C or Go loader's own output). */
  text: string[];
  /** Loader lines that were cut short (not JSON), left out. */
  unreadable: number;
}

/** Ring buffer records kept for rendering; a busy program can produce millions. */
export const MAX_EVENTS = 100_000;

const HEX = /^(?:[0-9a-f]{2})*$/;

function isMapDump(m: unknown): m is MapDump {
  const d = m as MapDump;
  return (
    typeof d === 'object' &&
    d !== null &&
    typeof d.name === 'string' &&
    typeof d.type === 'string' &&
    Number.isInteger(d.key_size) &&
    Number.isInteger(d.value_size) &&
    Number.isInteger(d.btf_id) &&
    (d.entries === null ||
      (Array.isArray(d.entries) &&
        d.entries.every(
          (e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'string',
        )))
  );
}

/** Read the loader's lines (stdout, or a `--dump-maps` file). */
export function parseLoaderOutput(text: string, source = 'loader output'): LoaderOutput {
  const out: LoaderOutput = {
    attached: [],
    skipped: [],
    ready: false,
    events: [],
    eventsDropped: 0,
    text: [],
    unreadable: 0,
  };
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!line.startsWith('{"type":"')) {
      if (line !== '') out.text.push(line);
      return;
    }
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      // cut short: the last line of a loader killed mid-write, or a long line a service
      // log split (svlogd); the map dump taken with --dump-maps does not depend on it
      out.unreadable++;
      return;
    }
    switch (o.type) {
      case 'attached':
        out.attached.push({ program: String(o.program), section: String(o.section) });
        break;
      case 'skipped':
        out.skipped.push({ program: String(o.program), section: String(o.section), error: String(o.error) });
        break;
      case 'ready':
        out.ready = true;
        break;
      case 'event': {
        const data = String(o.data);
        if (!HEX.test(data)) throw badLine(source, i, 'an event whose data is not hex');
        if (out.events.length >= MAX_EVENTS) out.eventsDropped++;
        else out.events.push({ map: String(o.map), data: Buffer.from(data, 'hex') });
        break;
      }
      case 'maps': {
        const maps = o.maps;
        const btf = o.btf;
        if (!Array.isArray(maps) || !maps.every(isMapDump) || typeof btf !== 'object' || btf === null)
          throw badLine(source, i, 'a map dump without maps and btf');
        for (const m of maps)
          for (const [k, v] of m.entries ?? [])
            if (!HEX.test(k) || !HEX.test(v))
              throw badLine(source, i, `map ${m.name}: an entry that is not hex`);
        for (const v of Object.values(btf))
          if (typeof v !== 'string' || !HEX.test(v)) throw badLine(source, i, 'BTF that is not hex');
        out.maps = { maps, btf: btf as Record<string, string> };
        break;
      }
      default:
        out.text.push(line);
    }
  });
  return out;
}

function badLine(source: string, i: number, what: string): KjxError {
  return new KjxError('TRACE_PARSE', `${source}:${i + 1}: ${what}`, {
    hint: 'the generic loader writes one JSON object per line; pass its output unchanged',
    position: { file: source, line: i + 1, column: 1 },
  });
}
