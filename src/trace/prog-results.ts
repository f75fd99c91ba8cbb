/**
 * `kjx trace prog NAME`: from what the loader printed (and, for C and Go loaders,
 * what `kjx-bpf-run --dump-maps` printed before the stop signal) to results: the
 * rendered maps (maps.json), histograms and tables for the trace renderers, global
 * counters, and ring buffer records as JSON.
 *
 * Pure: text in, values out.
 */

import type { Rendered } from '../bpf/btf.js';
import { type LoaderOutput, parseLoaderOutput } from '../bpf/loader-output.js';
import { mapsJson, type RenderedProgram, renderEvents, renderProgramMaps } from './prog-maps.js';
import type { TraceResults } from './results.js';

export interface ProgResults {
  loader: LoaderOutput;
  program?: RenderedProgram;
  /** maps.json: map name -> entries; a global data section -> its variables. */
  maps?: Record<string, unknown>;
  events: { map: string; event: Rendered }[];
  results: TraceResults;
}

/** `out`: the loader's stdout; `dump`: a `--dump-maps` file ('' when there is none). */
export function progResults(out: string, dump: string, source = 'prog.raw.txt'): ProgResults {
  const loader = parseLoaderOutput(out, source);
  if (dump.trim()) {
    const d = parseLoaderOutput(dump, 'maps dump');
    // the dump taken before the stop wins: a custom loader prints no maps line itself
    if (d.maps) loader.maps = d.maps;
  }
  const program = loader.maps ? renderProgramMaps(loader.maps, source) : undefined;
  const events = renderEvents(loader.events, loader.maps);
  const [first, ...rest] = program?.tables ?? [];
  const results: TraceResults = {
    histograms: program?.histograms ?? [],
    ...(first ? { table: { rows: first.rows, columns: first.columns } } : {}),
    ...(rest.length ? { tables: rest.map((t) => ({ title: t.map, rows: t.rows, columns: t.columns })) } : {}),
  };
  if (first && (rest.length > 0 || (program?.histograms.length ?? 0) > 0)) results.tableTitle = first.map;
  return {
    loader,
    ...(program ? { program, maps: mapsJson(program) } : {}),
    events,
    results,
  };
}
