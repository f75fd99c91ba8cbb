/**
 * `kjx trace` end to end, without the CLI: run the driver script (guest-scripts.ts)
 * in a Guest (src/vm/guest.ts: an ephemeral VM, or a detached one over SSH), take the framed files
 * off its stdout, turn the raw output into results (results.ts) and write them with
 * the renderers (histogram, flame graph, table) into the output directory.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import { findVerifierFailure, formatVerifierFailure, locate } from '../bpf/verifier-log.js';
import { KjxError } from '../util/errors.js';
import type { ServiceEvent } from '../vm/boot-phases.js';
import type { Guest, GuestRunResult, Limits } from '../vm/guest.js';
import { type FoldedStack, totalCount } from './folded.js';
import { FRAME_PREFIX } from './guest-scripts.js';
import { formatLog2Hist, type Log2Hist } from './histogram.js';
import { type ProgResults, progResults } from './prog-results.js';
import { stripServiceLog, type TraceResults, traceResults } from './results.js';
import { flameGraphSvg } from './svg-flame.js';
import { histogramSvg } from './svg-histogram.js';
import { formatTable } from './table.js';
import { type GuestTracer, TRACERS } from './tracers.js';

/** The files a driver shipped, and whether its end frame arrived. */
export interface Frames {
  files: Map<string, Buffer>;
  complete: boolean;
  /** Why the frames stopped early: a file cut short, or a line that is not a frame. */
  problem?: string;
}

/**
 * Split the driver's stdout into files (`@@kjx-trace:file name=N bytes=B\n`, B bytes,
 * a newline; then `@@kjx-trace:end\n`). Bytes before the first frame are ignored.
 * Never throws: the guest may panic or time out mid-way, and then the run's outcome
 * is what the user needs to hear, so a file cut short keeps the bytes that arrived
 * and the frames are marked incomplete with the `problem`.
 */
export function parseFrames(buf: Buffer): Frames {
  const files = new Map<string, Buffer>();
  const head = Buffer.from(FRAME_PREFIX);
  let at = buf.indexOf(head);
  while (at >= 0) {
    const nl = buf.indexOf(0x0a, at);
    if (nl < 0) return { files, complete: false, problem: 'a frame header was cut short' };
    const line = buf.subarray(at + head.length, nl).toString('utf8');
    if (line === 'end') return { files, complete: true };
    const m = /^file name=(\S+) bytes=\s*(\d+)\s*$/.exec(line);
    if (!m)
      return {
        files,
        complete: false,
        problem: `unexpected frame line ${JSON.stringify(line.slice(0, 80))}`,
      };
    const n = Number(m[2]);
    if (nl + 1 + n > buf.length) {
      files.set(m[1]!, buf.subarray(nl + 1));
      return {
        files,
        complete: false,
        problem: `${m[1]} was cut short (${buf.length - nl - 1} of ${n} bytes)`,
      };
    }
    files.set(m[1]!, buf.subarray(nl + 1, nl + 1 + n));
    at = buf.indexOf(head, nl + 1 + n);
  }
  return { files, complete: false };
}

/** The files `renderTrace` writes (any tracer), so a previous trace's can be told from anything else. */
const TRACE_FILE = new RegExp(
  `^(summary\\.json|maps\\.json|(${TRACERS.join('|')})(-\\d+)?\\.(raw\\.txt|stderr\\.txt|hist\\.txt|svg|folded|table\\.txt|events\\.jsonl))$`,
);

/**
 * Make `-o DIR` ready before the trace runs: a missing or empty directory is fine; a
 * previous kjx trace directory (summary.json and only files kjx writes) has those
 * files removed, so none is left from another tracer; anything else is refused
 * rather than mixed into.
 */
export function prepareOutputDir(dir: string): void {
  if (!existsSync(dir)) return;
  const names = readdirSync(dir);
  if (names.length === 0) return;
  const foreign = names.filter((n) => !TRACE_FILE.test(n));
  if (!names.includes('summary.json') || foreign.length > 0)
    throw new KjxError('USAGE', `-o ${dir}: the directory is not empty and not a kjx trace directory`, {
      hint: `give a new or empty directory, or leave -o out (results go to .kjx/traces/TRACER-STAMP)${foreign.length ? `; it has ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}` : ''}`,
    });
  for (const n of names) rmSync(join(dir, n), { force: true });
}

/**
 * Take `base` as a fresh directory for results, or `base-2`, `base-3`, ...: creating it
 * (not recursively) is the claim, so two traces started in the same second, even at
 * once, never share one.
 */
export function claimTraceDir(base: string): string {
  mkdirSync(join(base, '..'), { recursive: true });
  for (let n = 1; ; n++) {
    const dir = n === 1 ? base : `${base}-${n}`;
    try {
      mkdirSync(dir);
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/** `key=value` lines of the driver's meta file. */
export function parseMeta(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of text.split('\n')) {
    const eq = l.indexOf('=');
    if (eq > 0) out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

export interface DriverRun {
  frames: Frames;
  /** How the driver's run ended (an ephemeral VM's panic or timeout, or its exit). */
  result: GuestRunResult;
  /** Service state changes while an ephemeral VM booted (none for a detached one). */
  services: ServiceEvent[];
}

/**
 * Run a driver script in a guest (an ephemeral VM booted for it, or a detached one
 * over SSH); the workload's output goes to `stderr` as it comes.
 */
export async function runDriver(
  guest: Guest,
  script: string,
  stderr: Writable,
  limits: Limits,
): Promise<DriverRun> {
  const chunks: Buffer[] = [];
  const stdout = new PassThrough().on('data', (b: Buffer) => chunks.push(b));
  const result = await guest.run({ argv: ['/bin/sh', '-c', script] }, { stdout, stderr, ...limits });
  return { frames: parseFrames(Buffer.concat(chunks)), result, services: guest.timing().services };
}

/**
 * A run that did not end with the driver exiting (panic, timeout, QEMU died) as the
 * error to report, with the console excerpt; checked before the frames, which such a
 * run leaves cut short. `undefined` when the run exited.
 */
export function runOutcomeError(
  tracer: string,
  run: Pick<GuestRunResult, 'outcome' | 'message' | 'excerpt'> & { stateDir: string },
): KjxError | undefined {
  if (run.outcome === 'exited') return undefined;
  const code =
    run.outcome === 'panic' ? 'GUEST_PANIC' : run.outcome === 'vm-failed' ? 'VM_START' : 'VM_TIMEOUT';
  return new KjxError(code, `trace ${tracer}: ${run.message ?? run.outcome}`, {
    hint: `console log: ${join(run.stateDir, 'console.log')}${run.excerpt ? `\n--- console (last lines) ---\n${run.excerpt}` : ''}`,
  });
}

export interface TraceSummary {
  tracer: string;
  via: string;
  kernel?: string;
  /** `start`: how the ephemeral VM started, booted or restored from a snapshot at ready. */
  target: { vm?: string; spec?: string; buildId?: string; start?: 'booted' | 'restored' };
  workload?: { argv: string[]; status?: number; killedAfterDuration: boolean };
  durationS?: number;
  /** Guest seconds: from starting the tracer to attached, and the traced window. */
  attachS?: number;
  tracedS?: number;
  tracerStatus?: number;
  outputDir: string;
  files: Record<string, string>;
  histograms?: {
    unit: string;
    label?: string;
    total: number;
    /** Both bounds included; `null` is an open end (no lower / no upper bound, as bpftrace's `(..., 0)` and `[100, ...)`). */
    buckets: { low: number | null; high: number | null; count: number }[];
  }[];
  stacks?: { unique: number; total: number; unit: string };
  top?: Record<string, string | number>[];
  error?: string;
  tracerStderr?: string;
  /** `kjx trace prog`: what the generic loader attached (and could not). */
  program?: {
    attached: { program: string; section: string }[];
    skipped: { program: string; error: string }[];
  };
  /** `kjx trace prog`: each map's type and how many entries it had (the entries are in maps.json). */
  maps?: Record<string, { type: string; entries?: number; truncated?: boolean }>;
  /** `kjx trace prog`: global integer variables of the program. */
  counters?: Record<string, unknown>;
  /** `kjx trace prog`: ring buffer records received (each a line of prog.events.jsonl). */
  events?: number;
  /** Service state changes while the ephemeral VM booted (guest uptime), in order. */
  services?: { name: string; state: string; uptime: number }[];
}

export interface Rendered {
  summary: TraceSummary;
  /** What the CLI prints: the text histogram(s) or the top of the table. */
  text: string;
  results: TraceResults;
}

/** An open end (±Infinity) as JSON `null` on purpose (JSON.stringify would do it silently). */
const bound = (n: number): number | null => (Number.isFinite(n) ? n : null);

const histTotal = (h: Log2Hist) => h.buckets.reduce((a, b) => a + b.count, 0);

/** Top stacks by count as table rows (for the text output). */
function topStacks(stacks: FoldedStack[], n: number): Record<string, string | number>[] {
  return [...stacks]
    .sort((a, b) => b.count - a.count)
    .slice(0, n)
    .map((s) => ({
      count: s.count,
      stack: s.frames.length > 6 ? `${s.frames[0]};…;${s.frames.slice(-4).join(';')}` : s.frames.join(';'),
    }));
}

/**
 * Write raw files, results and pictures into `dir`; return the summary (also written
 * as summary.json) and the text to print. A tracer that failed in the guest (no
 * output, an error) still gets its raw files written, then a TRACE_FAILED error.
 */
export function renderTrace(
  dir: string,
  t: GuestTracer,
  frames: Frames,
  ctx: {
    target: TraceSummary['target'];
    workload?: string[];
    durationS?: number;
    services?: TraceSummary['services'];
    /** `kjx trace prog`: the program's sources, to place a verifier error on its line. */
    sources?: { file: string; text: string }[];
  },
): Rendered {
  mkdirSync(dir, { recursive: true });
  const file = (name: string) => frames.files.get(name)?.toString('utf8') ?? '';
  const meta = parseMeta(file('meta'));
  const base = t.tracer;
  const files: Record<string, string> = {};
  const write = (name: string, data: string, key: string) => {
    writeFileSync(join(dir, name), data);
    files[key] = resolve(dir, name);
  };
  write(`${base}.raw.txt`, file('out'), 'raw');
  if (file('err').trim()) write(`${base}.stderr.txt`, file('err'), 'stderr');
  const num = (k: string) => (meta[k] !== undefined && meta[k] !== '' ? Number(meta[k]) : undefined);
  const summary: TraceSummary = {
    tracer: t.tracer,
    via: t.via,
    ...(meta.kernel ? { kernel: meta.kernel } : {}),
    target: ctx.target,
    outputDir: dir,
    files,
  };
  if (ctx.workload?.length)
    summary.workload = {
      argv: ctx.workload,
      ...(num('workload_status') !== undefined ? { status: num('workload_status')! } : {}),
      killedAfterDuration: meta.workload_killed === '1',
    };
  if (ctx.durationS !== undefined) summary.durationS = ctx.durationS;
  if (ctx.services?.length) summary.services = ctx.services;
  const t0 = num('t_start');
  const ta = num('t_attached');
  const te = num('t_workload_end');
  if (t0 !== undefined && ta !== undefined) summary.attachS = Number((ta - t0).toFixed(3));
  if (ta !== undefined && te !== undefined) summary.tracedS = Number((te - ta).toFixed(3));
  if (num('tracer_status') !== undefined) summary.tracerStatus = num('tracer_status')!;
  const errTail = file('err').trim().split('\n').slice(-5).join('\n');
  if (errTail) summary.tracerStderr = errTail;

  // summary.json names itself among the files, so the file and --json agree
  const writeSummary = () => {
    files.summary = resolve(dir, 'summary.json');
    writeFileSync(files.summary, `${JSON.stringify(summary, null, 2)}\n`);
  };
  const failed = (msg: string) => {
    summary.error = msg;
    writeSummary();
    return new KjxError('TRACE_FAILED', `${t.tracer}: ${msg}`, {
      hint: `raw output and the tracer's stderr are in ${dir}${errTail ? `; it said:\n${errTail}` : ''}`,
    });
  };
  if (!frames.complete && frames.files.size === 0) throw failed('the guest sent no results');
  if (meta.error && t.format === 'bpf-prog') {
    const rejected = verifierError(t, file('err'), ctx.sources ?? [], files.stderr);
    if (rejected) {
      summary.error = rejected.message;
      writeSummary();
      throw rejected;
    }
  }
  if (meta.error) throw failed(meta.error);

  const raw = t.kind === 'service' ? stripServiceLog(file('out')) : file('out');
  let results: TraceResults;
  let prog: ProgResults | undefined;
  try {
    if (t.format === 'bpf-prog') {
      prog = progResults(raw, file('maps'), `${base}.raw.txt`);
      results = prog.results;
    } else results = traceResults(t.format, raw, `${base}.raw.txt`);
  } catch (e) {
    if (!(e instanceof KjxError) || e.code !== 'TRACE_PARSE') throw e;
    // the raw output stays, and summary.json says what went wrong with it
    summary.error = e.message;
    writeSummary();
    throw new KjxError('TRACE_PARSE', `${t.tracer}: cannot read what ${t.via} printed: ${e.message}`, {
      hint: `the raw output is in ${files.raw}${files.stderr ? ` (stderr: ${files.stderr})` : ''}; it was read as "${t.format}" output. A tracer that printed warnings or was cut short explains most of these; if it looks fine, report it with that file`,
      cause: e,
      ...(e.position ? { position: { ...e.position, file: files.raw! } } : {}),
    });
  }
  // a tracefs hist names its unit after the key field (`lat`); the plan knows the unit
  if (t.format === 'ftrace-hist' && t.unit) for (const h of results.histograms) h.unit = t.unit;
  const text: string[] = [];
  const title = `${t.tracer} (${t.via})`;
  const subtitle = ctx.workload?.length
    ? `while: ${ctx.workload.join(' ')}`
    : `for ${ctx.durationS ?? '?'} s`;

  if (results.histograms.length) {
    summary.histograms = results.histograms.map((h) => ({
      unit: h.unit,
      ...(h.label !== undefined ? { label: h.label } : {}),
      total: histTotal(h),
      buckets: h.buckets.map((b) => ({ low: bound(b.low), high: bound(b.high), count: b.count })),
    }));
    const txt = results.histograms.map(formatLog2Hist).join('\n');
    write(`${base}.hist.txt`, txt, 'histogramText');
    text.push(txt.trimEnd());
    results.histograms.forEach((h, i) => {
      const name = results.histograms.length > 1 ? `${base}-${i + 1}.svg` : `${base}.svg`;
      write(
        name,
        histogramSvg(h, { title: h.label ? `${title}: ${h.label}` : title }),
        i === 0 ? 'svg' : `svg${i + 1}`,
      );
    });
  }
  if (results.stacks) {
    const total = totalCount(results.stacks);
    summary.stacks = { unique: results.stacks.length, total, unit: t.unit ?? 'samples' };
    const folded = results.stacks.map((s) => `${s.frames.join(';')} ${s.count}`).join('\n');
    write(`${base}.folded`, `${folded}\n`, 'folded');
    write(
      `${base}.svg`,
      flameGraphSvg(results.stacks, { title, subtitle, countName: t.unit ?? 'samples' }),
      'svg',
    );
    const top = topStacks(results.stacks, 10);
    summary.top = top;
    text.push(
      formatTable(top, [
        { key: 'count', header: t.unit === 'us' ? 'off-CPU us' : 'samples' },
        { key: 'stack' },
      ]),
    );
  }
  if (results.table) {
    const rows = results.table.rows;
    summary.top = rows.slice(0, 50);
    const all = [
      { title: results.tableTitle, rows, columns: results.table.columns },
      ...(results.tables ?? []),
    ];
    const titled = (title: string | undefined, body: string) =>
      all.length > 1 && title ? `${title}:\n${body}` : body;
    write(
      `${base}.table.txt`,
      `${all
        .map((tb) =>
          titled(
            tb.title,
            formatTable(
              tb.rows,
              tb.columns.map((key) => ({ key })),
            ),
          ),
        )
        .join('\n\n')}\n`,
      'table',
    );
    for (const tb of all)
      text.push(
        titled(
          tb.title,
          formatTable(
            tb.rows.slice(0, 20),
            tb.columns.map((key) => ({ key })),
          ) + (tb.rows.length > 20 ? `\n… ${tb.rows.length - 20} more rows` : ''),
        ),
      );
  }
  if (prog) addProgResults(prog, summary, text, (name, data, key) => write(name, data, key), base);
  writeSummary();
  if (!frames.complete)
    throw failed(`the results were cut short${frames.problem ? ` (${frames.problem})` : ''}`);
  return { summary, text: text.join('\n\n'), results };
}

/** A program the kernel's verifier rejected, as BPF_VERIFIER with the log trimmed to its failing line. */
function verifierError(
  t: GuestTracer,
  stderr: string,
  sources: { file: string; text: string }[],
  stderrFile: string | undefined,
): KjxError | undefined {
  const found = findVerifierFailure(stderr);
  if (!found) return undefined;
  const f = locate(found, sources);
  const name = t.via.replace(/^tracing\.programs (\S+).*$/, '$1');
  return new KjxError(
    'BPF_VERIFIER',
    `program ${name}: the kernel's verifier rejected ${f.program ? `${f.program}()` : 'it'}:\n${formatVerifierFailure(f)}`,
    {
      hint: `the whole verifier log (${f.logLines} lines) is in ${stderrFile ?? "the tracer's stderr"}`,
      ...(f.location ? { position: { file: f.location.file, line: f.location.line, column: 1 } } : {}),
    },
  );
}

/** maps.json, prog.events.jsonl and the program's parts of the summary and the printed text. */
function addProgResults(
  prog: ProgResults,
  summary: TraceSummary,
  text: string[],
  write: (name: string, data: string, key: string) => void,
  base: string,
): void {
  const l = prog.loader;
  if (l.attached.length || l.skipped.length)
    summary.program = {
      attached: l.attached,
      skipped: l.skipped.map((s) => ({ program: s.program, error: s.error })),
    };
  if (prog.maps) write('maps.json', `${JSON.stringify(prog.maps, null, 2)}\n`, 'maps');
  if (prog.program) {
    summary.maps = Object.fromEntries(
      prog.program.maps.map((m) => [
        m.name,
        {
          type: m.type,
          ...(m.entries ? { entries: m.entries.length } : {}),
          ...(m.truncated ? { truncated: true } : {}),
        },
      ]),
    );
    if (Object.keys(prog.program.counters).length) {
      summary.counters = prog.program.counters;
      text.push(
        Object.entries(prog.program.counters)
          .map(([k, v]) => `${k} = ${String(v)}`)
          .join('\n'),
      );
    }
  }
  if (prog.events.length) {
    summary.events = prog.events.length + l.eventsDropped;
    write(`${base}.events.jsonl`, `${prog.events.map((e) => JSON.stringify(e)).join('\n')}\n`, 'events');
    text.push(`${summary.events} ring buffer records (${base}.events.jsonl)`);
  }
  // a C or Go loader's own output (its table, its log lines)
  if (l.text.length)
    text.unshift(
      l.text.slice(0, 40).join('\n') + (l.text.length > 40 ? `\n… ${l.text.length - 40} more lines` : ''),
    );
}
