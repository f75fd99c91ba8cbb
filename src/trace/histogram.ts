/**
 * Histograms as tracers print them, read into one shape (`Log2Hist`), and printed back
 * in the libbpf-tools layout.
 *
 * - libbpf-tools (runqlat, biolatency, ...): `print_log2_hist()` in
 *   bcc/libbpf-tools/trace_helpers.c — a header `     usecs               : count    distribution`,
 *   then `%*lld -> %-*lld : %-8d |stars|` per bucket from bucket 0 up to the last non-empty
 *   one; widths 10 and 40 stars, or 20 and 20 stars past 33 buckets. Tools that print one
 *   histogram per key put a `pid = 123 comm` (or `disk = sda`, `flags = Read`) line before it.
 * - bpftrace map printing (`print_map` in bpftrace's output.cpp): `@name[key]: value`
 *   lines, and `hist()`/`lhist()` maps as blocks of `[lo, hi)  count |@@@@|` lines with
 *   K/M/G/... suffixes (powers of 1024), `[n]` single values, `(..., n)` and `[n, ...)`
 *   open ends.
 * - tracefs hist triggers (Documentation/trace/histogram.rst): `{ key: value } hitcount: n`
 *   entries, `.log2` keys printed as `~ 2^k`, `.buckets=n` keys as `~ lo-hi`, `#` comments
 *   and a `Totals:` block.
 */
import { KjxError } from '../util/errors.js';

/** One bucket: values from `low` to `high`, both included. Open ends are ±Infinity. */
export interface HistBucket {
  low: number;
  high: number;
  count: number;
}

/** A histogram with its unit (`usecs`, `bytes`, ...) and what it is for (`pid = 123 sshd`). */
export interface Log2Hist {
  unit: string;
  buckets: HistBucket[];
  label?: string;
}

/** A parse error at `source:line`, showing the line. */
function parseError(source: string, line: number, what: string, text: string): KjxError {
  const shown = text.length > 120 ? `${text.slice(0, 117)}...` : text;
  return new KjxError('TRACE_PARSE', `${source}:${line}: ${what}: ${JSON.stringify(shown)}`, {
    hint: 'pass the tracer output unchanged (libbpf-tools histograms, bpftrace map prints, tracefs hist files)',
    position: { file: source, line, column: 1 },
  });
}

function splitLines(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\r$/, ''));
}

/** `0 -> 1`, `4096 -> 8191`; open ends as `...`. The same text in every renderer. */
export function bucketLabel(b: Pick<HistBucket, 'low' | 'high'>): string {
  const end = (n: number) => (Number.isFinite(n) ? String(n) : '...');
  return `${end(b.low)} -> ${end(b.high)}`;
}

// ---------------------------------------------------------------------------------------
// libbpf-tools

const LIBBPF_HEADER = /^\s*(\S+)\s+: count\s+distribution\s*$/;
const LIBBPF_LOG2_ROW = /^\s*(\d+) -> (\d+)\s+: (\d+)\s+\|[* ]*\+?\|\s*$/;
const LIBBPF_LINEAR_ROW = /^\s*(\d+)\s+: (\d+)\s+\|[* ]*\+?\|\s*$/;
/** `pid = 123 sshd`, `disk = sda`, `flags = Sync-Write`: what the next histogram is for. */
const LIBBPF_LABEL = /^\S.*? = .*$/;

/**
 * Every histogram in libbpf-tools output (runqlat, biolatency, ...), with the
 * `key = value` lines before each as its label (several joined with ", "). Other text
 * between histograms (the "Tracing ..." banner, `^C`, `-T` timestamps) is skipped; a
 * broken bucket row inside a histogram is a `TRACE_PARSE` error.
 */
export function parseLog2Hists(text: string, source = 'input'): Log2Hist[] {
  const out: Log2Hist[] = [];
  let labels: string[] = [];
  let cur: Log2Hist | undefined;
  const linear = new Set<Log2Hist>();
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const header = LIBBPF_HEADER.exec(line);
    if (header) {
      cur = { unit: header[1]!, buckets: [] };
      if (labels.length) cur.label = labels.join(', ');
      labels = [];
      out.push(cur);
      continue;
    }
    if (cur) {
      const log2 = LIBBPF_LOG2_ROW.exec(line);
      const single = log2 ? undefined : LIBBPF_LINEAR_ROW.exec(line);
      if (log2) {
        const b = { low: Number(log2[1]), high: Number(log2[2]), count: Number(log2[3]) };
        const prev = cur.buckets.at(-1);
        if (b.low > b.high || (prev && b.low <= prev.high)) {
          throw parseError(source, i + 1, 'histogram bucket out of order', line);
        }
        cur.buckets.push(b);
        continue;
      }
      if (single) {
        const v = Number(single[1]);
        const prev = cur.buckets.at(-1);
        if (prev && v <= prev.high) throw parseError(source, i + 1, 'histogram bucket out of order', line);
        cur.buckets.push({ low: v, high: v, count: Number(single[2]) });
        linear.add(cur);
        continue;
      }
      // a row that starts like a bucket but does not parse is damage, not chatter
      if (/^\s*\d/.test(line) && (line.includes('->') || line.includes('|'))) {
        throw parseError(source, i + 1, 'not a histogram bucket row', line);
      }
      if (cur.buckets.length === 0) throw parseError(source, i + 1, 'histogram header without buckets', line);
      cur = undefined;
    }
    if (/^\s*\d+ -> \d+\s+:/.test(line)) {
      throw parseError(source, i + 1, 'histogram bucket row without a header before it', line);
    }
    const t = line.trim();
    if (LIBBPF_LABEL.test(t)) labels.push(t);
  }
  if (cur && cur.buckets.length === 0) {
    throw parseError(source, lines.length, 'histogram header without buckets', lines.at(-1) ?? '');
  }
  for (const h of linear) h.buckets = linearBuckets(h.buckets);
  return out;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * print_linear_hist() prints the base of each non-empty bucket only (it skips empty
 * ones), so the step is the greatest common divisor of the gaps between printed
 * bases (a multiple of the real step when every gap is one, which the output cannot
 * tell apart), and the empty buckets in between are put back with count 0. A single
 * row keeps its one value as the bucket.
 */
/** Most buckets a linear histogram is filled out to; beyond, rows stay as printed. */
const LINEAR_FILL_MAX = 10_000;

function linearBuckets(rows: HistBucket[]): HistBucket[] {
  let step = 0;
  for (let i = 1; i < rows.length; i++) {
    const gap = rows[i]!.low - rows[i - 1]!.low;
    // rows out of order or not whole numbers: no step to fill in with
    if (!(gap > 0) || !Number.isSafeInteger(gap)) return rows;
    step = gcd(gap, step);
  }
  if (step === 0) return rows;
  if ((rows.at(-1)!.low - rows[0]!.low) / step >= LINEAR_FILL_MAX) return rows;
  const out: HistBucket[] = [];
  for (const r of rows) {
    for (let low = (out.at(-1)?.low ?? r.low - step) + step; low < r.low; low += step)
      out.push({ low, high: low + step - 1, count: 0 });
    out.push({ low: r.low, high: r.low + step - 1, count: r.count });
  }
  return out;
}

function stars(val: number, max: number, width: number): string {
  const n = max === 0 ? 0 : Math.floor((Math.min(val, max) * width) / max);
  return '*'.repeat(n) + ' '.repeat(width - n) + (val > max ? '+' : '');
}

/**
 * The libbpf-tools text of one histogram (`print_log2_hist`), byte for byte: buckets
 * from the first given up to the last non-empty one; nothing when all are empty. A label
 * is printed on its own line before the header, as runqlat -P does. Ends with a newline.
 */
export function formatLog2Hist(h: Log2Hist): string {
  let last = -1;
  let max = 0;
  h.buckets.forEach((b, i) => {
    if (b.count > 0) last = i;
    if (b.count > max) max = b.count;
  });
  if (last < 0) return '';
  const narrow = last <= 32;
  const lines: string[] = [];
  if (h.label !== undefined) lines.push(h.label);
  lines.push(`${' '.repeat(narrow ? 5 : 15)}${h.unit.padEnd(narrow ? 19 : 29)} : count    distribution`);
  const w = narrow ? 10 : 20;
  const end = (n: number) => (Number.isFinite(n) ? String(n) : '...');
  for (const b of h.buckets.slice(0, last + 1)) {
    lines.push(
      `${end(b.low).padStart(w)} -> ${end(b.high).padEnd(w)} : ${String(b.count).padEnd(8)} |${stars(b.count, max, narrow ? 40 : 20)}|`,
    );
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------
// bpftrace

/** One map bpftrace printed: a hist()/lhist() (one per key), or the scalar entries of a map. */
export type BpftraceResult =
  | { kind: 'hist'; name: string; key?: string; hist: Log2Hist }
  | { kind: 'map'; name: string; entries: BpftraceEntry[] };

/** `@name[key]: value`; `key` is '' for a map without keys. Numbers are numbers, anything else (stats(), strings) stays text. */
export interface BpftraceEntry {
  key: string;
  value: number | string;
}

const BT_MAP = /^@(\w*)(?:\[(.*)\])?:\s*(.*)$/;
const BT_ROW = /^([[(])([^\])]*)([\])])\s+(\d+)\s+\|[@ ]*\|\s*$/;
const SUFFIX: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 };

function btNumber(s: string): number | undefined {
  const m = /^(-?\d+)([KMGTP]?)$/.exec(s.trim());
  return m ? Number(m[1]) * SUFFIX[m[2]!]! : undefined;
}

/** A bpftrace bucket (`[2, 4)`, `[0]`, `(..., 0)`, `[100, ...)`) as inclusive bounds. */
function btBucket(open: string, inner: string, close: string): { low: number; high: number } | undefined {
  const parts = inner.split(',').map((p) => p.trim());
  if (parts.length === 1 && open === '[' && close === ']') {
    const v = btNumber(parts[0]!);
    return v === undefined ? undefined : { low: v, high: v };
  }
  if (parts.length !== 2 || close !== ')') return undefined;
  const low = parts[0] === '...' && open === '(' ? Number.NEGATIVE_INFINITY : btNumber(parts[0]!);
  const hiEx = parts[1] === '...' ? Number.POSITIVE_INFINITY : btNumber(parts[1]!);
  if (low === undefined || hiEx === undefined || (open === '(' && parts[0] !== '...')) return undefined;
  return { low, high: Number.isFinite(hiEx) ? hiEx - 1 : hiEx };
}

/** The line that ends a map entry whose key spans lines (`]: 5`, or `]:` before a hist). */
const BT_KEY_END = /\]:\s*(.*)$/;
/** Lines a multi-line key (a kstack/ustack) may take before it is given up on. */
const BT_KEY_MAX_LINES = 512;

/**
 * The map line at `i`, joined with the lines after it when its key spans several
 * (`@[` then one stack frame per line, then `]: 5`, as bpftrace prints stack keys).
 * The key's lines are trimmed and joined with `;`. `undefined` when it is no map line.
 */
function bpftraceMapLine(
  lines: string[],
  i: number,
): { name: string; key?: string; value: string; last: number } | undefined {
  const line = lines[i]!;
  const m = BT_MAP.exec(line);
  if (m) return { name: m[1]!, ...(m[2] !== undefined ? { key: m[2] } : {}), value: m[3]!.trim(), last: i };
  const open = /^@(\w*)\[(.*)$/.exec(line);
  if (!open) return undefined;
  const key: string[] = [open[2]!];
  for (let j = i + 1; j < lines.length && j <= i + BT_KEY_MAX_LINES; j++) {
    const l = lines[j]!;
    if (l.startsWith('@')) return undefined;
    const end = BT_KEY_END.exec(l);
    if (end && !/^\s/.test(l)) {
      key.push(l.slice(0, end.index));
      const text = key
        .map((k) => k.trim())
        .filter((k) => k !== '')
        .join(';');
      return { name: open[1]!, key: text, value: end[1]!.trim(), last: j };
    }
    key.push(l);
  }
  return undefined;
}

/**
 * The maps in bpftrace's output (what it prints at exit, or `print(@map)`): scalar
 * maps grouped by name, in the order first seen; each hist()/lhist() block on its own,
 * with the map name as unit (bpftrace scripts name maps after their unit: `@usecs`,
 * `@bytes`) and the key as label. Keys that span lines (stacks) are joined. Lines that
 * are not map prints (`Attaching 2 probes...`, printf output, even one starting with
 * `@`) are skipped; a broken bucket row is a `TRACE_PARSE` error, and so is output
 * where lines start with `@` but none of them is a map print.
 */
export function parseBpftraceOutput(text: string, source = 'input'): BpftraceResult[] {
  const out: BpftraceResult[] = [];
  const maps = new Map<string, Extract<BpftraceResult, { kind: 'map' }>>();
  const lines = splitLines(text);
  let skipped: { line: number; text: string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.startsWith('@')) continue;
    const m = bpftraceMapLine(lines, i);
    if (!m) {
      skipped ??= { line: i + 1, text: line };
      continue;
    }
    i = m.last;
    const name = m.name;
    const key = m.key;
    const value = m.value;
    const next = lines[i + 1]?.trim() ?? '';
    if (value === '' && (next.startsWith('[') || next.startsWith('('))) {
      const hist: Log2Hist = { unit: name || 'value', buckets: [] };
      if (key !== undefined) hist.label = key;
      while (i + 1 < lines.length && /^\s*[[(]/.test(lines[i + 1]!)) {
        i++;
        const row = BT_ROW.exec(lines[i]!.trim());
        const b = row && btBucket(row[1]!, row[2]!, row[3]!);
        if (!row || !b) throw parseError(source, i + 1, 'not a bpftrace histogram row', lines[i]!);
        const prev = hist.buckets.at(-1);
        if (prev && b.low <= prev.high)
          throw parseError(source, i + 1, 'histogram bucket out of order', lines[i]!);
        hist.buckets.push({ ...b, count: Number(row[4]) });
      }
      out.push({ kind: 'hist', name, ...(key !== undefined ? { key } : {}), hist });
      continue;
    }
    let map = maps.get(name);
    if (!map) {
      map = { kind: 'map', name, entries: [] };
      maps.set(name, map);
      out.push(map);
    }
    const n = Number(value);
    map.entries.push({ key: key ?? '', value: value !== '' && Number.isFinite(n) ? n : value });
  }
  if (out.length === 0 && skipped)
    throw parseError(source, skipped.line, 'not a bpftrace map line', skipped.text);
  return out;
}

// ---------------------------------------------------------------------------------------
// tracefs hist triggers

/** One line of a hist file: the key fields as printed, and the values (hitcount and any `vals=`). */
export interface FtraceHistEntry {
  key: Record<string, string>;
  values: Record<string, number>;
}

/** One histogram of a tracefs `hist` file. */
export interface FtraceHist {
  /** `hist:keys=...` from the `# trigger info:` comment. */
  trigger?: string;
  entries: FtraceHistEntry[];
  totals?: { hits: number; entries: number; dropped: number };
  /**
   * When the single key field is `.log2` (`~ 2^k`) or `.buckets=n` (`~ lo-hi`): the
   * hitcounts as a histogram, gaps filled with empty buckets, unit = the field name.
   */
  hist?: Log2Hist;
}

const FT_TRIGGER = /^#\s*trigger info:\s*(.*?)\s*$/;
const FT_VALUE = /([A-Za-z_][\w.]*):\s*(-?\d+)/g;

/**
 * Parse the `hist` file of one or more tracefs hist triggers. A new histogram starts at
 * each `# trigger info:` line. Multi-line keys (`stacktrace`) are joined. Any line that
 * is not a comment, an entry, or part of `Totals:` is a `TRACE_PARSE` error.
 */
export function parseFtraceHist(text: string, source = 'input'): FtraceHist[] {
  const out: FtraceHist[] = [];
  let cur: FtraceHist | undefined;
  const section = () => {
    if (!cur) {
      cur = { entries: [] };
      out.push(cur);
    }
    return cur;
  };
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const t = line.trim();
    if (t === '') continue;
    if (t.startsWith('#')) {
      const trig = FT_TRIGGER.exec(t);
      if (trig) {
        cur = { trigger: trig[1]!, entries: [] };
        out.push(cur);
      }
      continue;
    }
    if (t === 'Totals:') {
      const totals = { hits: 0, entries: 0, dropped: 0 };
      while (i + 1 < lines.length && /^\s+\w+:\s*\d+\s*$/.test(lines[i + 1]!)) {
        i++;
        const [k, v] = lines[i]!.trim().split(':') as [string, string];
        const key = k.toLowerCase();
        if (key === 'hits' || key === 'entries' || key === 'dropped') totals[key] = Number(v);
      }
      section().totals = totals;
      continue;
    }
    if (t.startsWith('{')) {
      const start = i;
      let joined = t;
      while (!/\}\s*\S/.test(joined) && i + 1 < lines.length) {
        i++;
        joined += ` ${lines[i]!.trim()}`;
      }
      const close = joined.lastIndexOf('}');
      if (close < 0) throw parseError(source, start + 1, 'hist entry without a closing "}"', line);
      const key = parseFtraceKey(joined.slice(1, close));
      const values: Record<string, number> = {};
      for (const m of joined.slice(close + 1).matchAll(FT_VALUE)) values[m[1]!] = Number(m[2]);
      if (!key || Object.keys(values).length === 0) {
        throw parseError(source, start + 1, 'not a hist entry', joined);
      }
      section().entries.push({ key, values });
      continue;
    }
    throw parseError(source, i + 1, 'not part of a hist file', line);
  }
  for (const h of out) {
    const hist = ftraceLog2(h.entries);
    if (hist) h.hist = hist;
  }
  return out;
}

/** `common_pid: bash [ 915], lat: ~ 2^4` to fields; values keep their text, spaces collapsed. */
function parseFtraceKey(inner: string): Record<string, string> | undefined {
  const key: Record<string, string> = {};
  // split before every `name:` that follows a comma, so values may contain spaces and colons
  const parts = inner.trim().split(/,\s+(?=[A-Za-z_][\w.]*:)/);
  for (const p of parts) {
    const m = /^([A-Za-z_][\w.]*):\s*(.*)$/s.exec(p.trim());
    if (!m) return undefined;
    key[m[1]!] = m[2]!.replace(/\s+/g, ' ').trim();
  }
  return key;
}

/**
 * `.log2` keys hold ilog2(roundup_pow_of_two(v)) (kernel/trace/trace_events_hist.c), so
 * `~ 2^k` counts values in (2^(k-1), 2^k]: bucket 2^(k-1)+1 .. 2^k, and 0 .. 1 for k = 0.
 */
function ftraceLog2(entries: FtraceHistEntry[]): Log2Hist | undefined {
  const field = entries.length ? Object.keys(entries[0]!.key) : [];
  if (field.length !== 1) return undefined;
  const name = field[0]!;
  // step 0: log2 buckets; otherwise `.buckets=step`
  let step: number | undefined;
  const byLow = new Map<number, HistBucket>();
  for (const e of entries) {
    const v = e.key[name];
    if (Object.keys(e.key).length !== 1 || v === undefined) return undefined;
    const count = e.values.hitcount ?? 0;
    const pow = /^~ 2\^(\d+)$/.exec(v);
    const range = /^~ (\d+)-(\d+)$/.exec(v);
    let b: HistBucket;
    if (pow && (step ?? 0) === 0) {
      step = 0;
      const k = Number(pow[1]);
      b = k === 0 ? { low: 0, high: 1, count } : { low: 2 ** (k - 1) + 1, high: 2 ** k, count };
    } else if (range) {
      const [low, high] = [Number(range[1]), Number(range[2])];
      if (step !== undefined && step !== high - low + 1) return undefined;
      step = high - low + 1;
      b = { low, high, count };
    } else return undefined;
    const prev = byLow.get(b.low);
    if (prev) prev.count += count;
    else byLow.set(b.low, b);
  }
  const filled: HistBucket[] = [];
  for (const b of [...byLow.values()].sort((x, y) => x.low - y.low)) {
    const prev = filled.at(-1);
    // the kernel prints only buckets that were hit; a histogram has the empty ones too
    for (
      let next = prev && nextBucket(prev, step!);
      next && next.low < b.low;
      next = nextBucket(next, step!)
    ) {
      filled.push(next);
    }
    filled.push(b);
  }
  return { unit: name.replace(/\.(log2|buckets=?\d*)$/, ''), buckets: filled };
}

function nextBucket(b: HistBucket, step: number): HistBucket {
  if (step > 0) return { low: b.low + step, high: b.high + step, count: 0 };
  return { low: b.high + 1, high: b.high * 2, count: 0 };
}
