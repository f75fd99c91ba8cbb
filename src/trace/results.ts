/**
 * From a tracer's raw output to results: a latency histogram, folded stacks, or a
 * table of top entries. Pure: text in, values out. The formats are those of the
 * programs `tracers.ts` runs: libbpf-tools 0.26 (offcputime's multi-line stacks,
 * execsnoop's and syscount's tables), bpftrace 0.17 map prints, and tracefs hist
 * files (parsed by `histogram.ts`).
 */

import { KjxError } from '../util/errors.js';
import type { FoldedStack } from './folded.js';
import { type Log2Hist, parseBpftraceOutput, parseFtraceHist, parseLog2Hists } from './histogram.js';
import { progResults } from './prog-results.js';
import type { Cell } from './table.js';
import type { OutputFormat } from './tracers.js';

export type Row = Record<string, Cell>;

export interface TraceResults {
  histograms: Log2Hist[];
  stacks?: FoldedStack[];
  /** Top entries, biggest first, and the columns to show them with. */
  table?: { rows: Row[]; columns: string[] };
  /** What `table` shows, when there is more than one thing to show (a program's map). */
  tableTitle?: string;
  /** More tables (a program's other maps), each with its title. */
  tables?: { title: string; rows: Row[]; columns: string[] }[];
}

/** Frames the BPF program itself adds on top of every stack it takes (not the traced code's). */
const INSTRUMENTATION = /^(bpf_prog_[0-9a-f]+_\w+|bpf_trace_run\d+|\[Missed User Stack\])$/;

/**
 * offcputime's stacks: frame lines (leaf first: the kernel stack, then the user
 * stack), a `-  COMM (PID)` line, the microseconds, a blank line. Folded root first
 * with the command as the root frame, as `offcputime -f` in bcc prints them.
 */
export function offcpuToFolded(text: string, source = 'offcputime'): FoldedStack[] {
  const merged = new Map<string, FoldedStack>();
  let frames: string[] = [];
  let comm: string | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    const t = line.trim();
    if (t === '') {
      frames = [];
      continue;
    }
    const who = /^-\s+(.*) \((\d+)\)$/.exec(t);
    if (who) {
      comm = who[1]!.trim();
      continue;
    }
    if (comm !== undefined && /^\d+$/.test(t)) {
      const stack = [comm, ...frames.filter((f) => !INSTRUMENTATION.test(f)).reverse()];
      const key = stack.join(';');
      const prev = merged.get(key);
      if (prev) prev.count += Number(t);
      else merged.set(key, { frames: stack, count: Number(t) });
      frames = [];
      comm = undefined;
      continue;
    }
    if (!/^\s/.test(line)) continue; // banners, warnings
    if (comm !== undefined)
      throw new KjxError('TRACE_PARSE', `${source}:${i + 1}: expected the count after "- ${comm}"`, {
        hint: 'pass offcputime output unchanged',
      });
    frames.push(t);
  }
  return [...merged.values()];
}

/** `func+0x12` / `func+18` / `func+18 (/usr/lib/x.so)` → `func`. */
function frameName(f: string): string {
  return f.replace(/\s+\(.*\)$/, '').replace(/\+(0x[0-9a-f]+|\d+)$/i, '');
}

/**
 * bpftrace's print of `@[kstack, ustack, comm] = count()`: each key is the stacks
 * (one indented frame per line, leaf first) and the command, separated by ", ".
 * Folded root first: command, user frames, kernel frames.
 */
export function bpftraceStacksToFolded(text: string, source = 'bpftrace'): FoldedStack[] {
  const merged = new Map<string, FoldedStack>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('@[')) continue;
    const start = i;
    const body: string[] = [lines[i]!.slice(2)];
    const ENTRY_END = /^(.*)\]: (\d+)\s*$/;
    let end = ENTRY_END.exec(body.at(-1)!);
    while (!end && i + 1 < lines.length) {
      body.push(lines[++i]!);
      end = ENTRY_END.exec(body.at(-1)!);
    }
    if (!end)
      throw new KjxError('TRACE_PARSE', `${source}:${start + 1}: a map entry without "]: COUNT"`, {
        hint: 'pass bpftrace output unchanged',
      });
    body[body.length - 1] = end[1]!;
    const parts = body.join('\n').split(/\n, ?|^, ?/m);
    const comm = parts.length > 1 ? parts.pop()!.replace(/^, ?/, '').trim() : '';
    const stacks = parts.map((p) =>
      p
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && l !== ',')
        .map(frameName),
    );
    const [kstack = [], ustack = []] = stacks;
    const frames = [comm || '[unknown]', ...[...ustack].reverse(), ...[...kstack].reverse()];
    const key = frames.join(';');
    const prev = merged.get(key);
    const count = Number(end[2]);
    if (prev) prev.count += count;
    else merged.set(key, { frames, count });
  }
  return [...merged.values()];
}

/** svlogd -tt stamps ("2024-01-01_12:00:00.12345 ") off each line, and kjx's own lines out. */
export function stripServiceLog(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/^\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d\.\d+ /, ''))
    .filter((l) => !/^kjx(-bpf-ready)?: /.test(l))
    .join('\n');
}

/** `{ common_pid: cat [ 123] }` → `cat`, 123. */
function processOf(field: string | undefined): { comm: string; pid: number } {
  const m = /^(.*?)\s*\[\s*(\d+)\]$/.exec(field ?? '');
  return m ? { comm: m[1]!, pid: Number(m[2]) } : { comm: field ?? '', pid: 0 };
}

/** funccount's output: `### functions F1 F2 ...`, then one hist per function (keyed by process), in that order. */
function funccountRows(text: string, source: string): Row[] {
  const nl = text.indexOf('\n');
  const head = /^### functions((?: \S+)*)$/.exec(nl < 0 ? text : text.slice(0, nl));
  if (!head)
    throw new KjxError('TRACE_PARSE', `${source}:1: expected "### functions NAME..." from kjx-ftrace`, {
      hint: 'pass kjx-ftrace stop funccount output unchanged',
    });
  const names = head[1]!.trim().split(' ').filter(Boolean);
  const hists = parseFtraceHist(nl < 0 ? '' : text.slice(nl + 1), source);
  if (hists.length !== names.length)
    throw new KjxError('TRACE_PARSE', `${source}: ${names.length} functions but ${hists.length} hists`, {
      hint: 'the output was cut short; see the tracer stderr',
    });
  const rows: Row[] = hists.map((h, i) => {
    const per = h.entries.map((e) => ({ ...processOf(e.key.common_pid), n: e.values.hitcount ?? 0 }));
    const count = h.totals?.hits ?? per.reduce((a, p) => a + p.n, 0);
    const byComm = new Map<string, number>();
    for (const p of per) byComm.set(p.comm, (byComm.get(p.comm) ?? 0) + p.n);
    const top = [...byComm].sort((a, b) => b[1] - a[1]).slice(0, 3);
    return { function: names[i]!, count, processes: top.map(([c, n]) => `${c} ${n}`).join(', ') };
  });
  return rows.sort((a, b) => Number(b.count) - Number(a.count));
}

function syscallRows(text: string, source: string): Row[] {
  const rows: Row[] = [];
  for (const h of parseFtraceHist(text, source))
    for (const e of h.entries) {
      const p = processOf(e.key.common_pid);
      const sys = (e.key.id ?? '').replace(/\s*\[\s*\d+\]$/, '').replace(/^sys_/, '');
      rows.push({ process: p.comm, pid: p.pid, syscall: sys, count: e.values.hitcount ?? 0 });
    }
  return rows.sort((a, b) => Number(b.count) - Number(a.count));
}

/** Whitespace tables with a header line (execsnoop, syscount): rows from the header's column names. */
function columnsTable(
  text: string,
  header: RegExp,
  lastTakesRest: boolean,
): { rows: Row[]; columns: string[] } {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => header.test(l));
  if (at < 0) return { rows: [], columns: [] };
  const columns = lines[at]!.trim().split(/\s+/);
  const rows: Row[] = [];
  for (const l of lines.slice(at + 1)) {
    if (l.trim() === '' || header.test(l) || /^\[[\d:]+\]$/.test(l.trim())) continue;
    const cells = l.trim().split(/\s+/);
    if (cells.length < columns.length - (lastTakesRest ? 1 : 0)) continue;
    const row: Row = {};
    columns.forEach((c, j) => {
      const v = lastTakesRest && j === columns.length - 1 ? cells.slice(j).join(' ') : (cells[j] ?? '');
      row[c] = /^-?\d+$/.test(v) ? Number(v) : v;
    });
    rows.push(row);
  }
  return { rows, columns };
}

/** `sched_process_exec: filename=/bin/cat pid=123 old_pid=123` lines of the trace buffer. */
function ftraceExecRows(text: string): Row[] {
  const rows: Row[] = [];
  for (const l of text.split('\n')) {
    const m = /^\s*(.+?)-(\d+)\s+\[\d+\].*?\s([\d.]+): sched_process_exec: filename=(\S+) pid=(\d+)/.exec(l);
    if (m) rows.push({ time: Number(m[3]), pid: Number(m[5]), filename: m[4]!, comm: m[1]!.trim() });
  }
  return rows;
}

/** Interpret one tracer's raw output. */
export function traceResults(format: OutputFormat, text: string, source: string): TraceResults {
  switch (format) {
    case 'libbpf-hist':
      return { histograms: parseLog2Hists(text, source) };
    case 'ftrace-hist':
      return { histograms: parseFtraceHist(text, source).flatMap((h) => (h.hist ? [h.hist] : [])) };
    case 'offcpu-stacks':
      return { histograms: [], stacks: offcpuToFolded(text, source) };
    case 'bpftrace-stacks':
      return { histograms: [], stacks: bpftraceStacksToFolded(text, source) };
    case 'bpftrace': {
      const res = parseBpftraceOutput(text, source);
      const rows: Row[] = [];
      for (const r of res)
        if (r.kind === 'map')
          for (const e of r.entries) rows.push({ map: `@${r.name}`, key: e.key, value: e.value });
      rows.sort((a, b) =>
        typeof b.value === 'number' && typeof a.value === 'number' ? b.value - a.value : 0,
      );
      return {
        histograms: res.flatMap((r) => (r.kind === 'hist' ? [r.hist] : [])),
        ...(rows.length ? { table: { rows, columns: ['map', 'key', 'value'] } } : {}),
      };
    }
    case 'ftrace-funccount':
      return {
        histograms: [],
        table: { rows: funccountRows(text, source), columns: ['function', 'count', 'processes'] },
      };
    case 'ftrace-syscalls':
      return {
        histograms: [],
        table: { rows: syscallRows(text, source), columns: ['process', 'pid', 'syscall', 'count'] },
      };
    case 'ftrace-exec':
      return {
        histograms: [],
        table: { rows: ftraceExecRows(text), columns: ['time', 'pid', 'filename', 'comm'] },
      };
    case 'execsnoop':
      return { histograms: [], table: columnsTable(text, /^PCOMM\s+PID\s+PPID/, true) };
    case 'syscount': {
      const t = columnsTable(text, /^\s*PID\s+COMM\s+COUNT/, false);
      return { histograms: [], table: t };
    }
    case 'text':
      return { histograms: parseLog2Hists(text, source) };
    case 'bpf-prog':
      return progResults(text, '', source).results;
  }
}
