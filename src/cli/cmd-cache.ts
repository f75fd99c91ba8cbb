/**
 * `kjx cache [list] [--json]` and `kjx cache clean [kinds...] [--older-than DAYS]
 * [--dry-run]`: what kjx keeps in its cache, and getting the space back. Every entry
 * is rebuilt or fetched again when it is next needed (sources/cache-entries.ts).
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { cacheRoot } from '../sources/cache.js';
import {
  CACHE_KINDS,
  type CacheEntry,
  type CacheKind,
  cacheEntries,
  foreignNames,
  removeEntry,
} from '../sources/cache-entries.js';
import { KjxError } from '../util/errors.js';
import { humanBytes, tableLines } from './table.js';

const DAY_MS = 24 * 60 * 60 * 1000;

function day(ms: number): string {
  return ms > 0 ? new Date(ms).toISOString().slice(0, 10) : '-';
}

/** The kinds named on the command line, all of them when none is. */
export function kindsNamed(names: readonly string[]): CacheKind[] {
  const known = new Map(CACHE_KINDS.map((k) => [k.name, k]));
  for (const n of names)
    if (!known.has(n))
      throw new KjxError('USAGE', `kjx cache clean: no kind of cache entry is called "${n}"`, {
        hint: `the kinds are ${CACHE_KINDS.map((k) => k.name).join(', ')} (kjx cache lists them)`,
      });
  return names.length ? CACHE_KINDS.filter((k) => names.includes(k.name)) : [...CACHE_KINDS];
}

/** `--older-than`: days as a number (fractions allowed), or with a `d` after it. */
export function olderThanMs(value: string): number {
  const m = /^(\d+(?:\.\d+)?)d?$/.exec(value.trim());
  if (!m)
    throw new KjxError(
      'USAGE',
      `kjx cache clean --older-than ${JSON.stringify(value)}: not a number of days`,
      {
        hint: 'for example --older-than 30 (entries not used for 30 days)',
      },
    );
  return Number(m[1]) * DAY_MS;
}

interface KindSummary {
  kind: string;
  what: string;
  entries: number;
  bytes: number;
  lastUsed: number;
}

function summarize(entries: readonly CacheEntry[], kinds: readonly CacheKind[]): KindSummary[] {
  return kinds.map((k) => {
    const of = entries.filter((e) => e.kind === k.name);
    return {
      kind: k.name,
      what: k.what,
      entries: of.length,
      bytes: of.reduce((a, e) => a + e.bytes, 0),
      lastUsed: of.reduce((a, e) => Math.max(a, e.lastUsed), 0),
    };
  });
}

function list(root: string, json: boolean): void {
  const there = existsSync(root);
  const kinds = summarize(there ? cacheEntries(root) : [], CACHE_KINDS);
  const other = there ? foreignNames(root) : [];
  const total = kinds.reduce((a, k) => a + k.bytes, 0);
  if (json) {
    console.log(JSON.stringify({ root, bytes: total, kinds, other }, null, 2));
    return;
  }
  if (!there) {
    console.log(`nothing cached: ${root} does not exist`);
    return;
  }
  console.log(`cache: ${root}`);
  const rows = kinds
    .filter((k) => k.entries > 0)
    .map((k) => [k.kind, String(k.entries), humanBytes(k.bytes), day(k.lastUsed), k.what]);
  for (const line of tableLines([['KIND', 'ENTRIES', 'SIZE', 'LAST USED', 'WHAT'], ...rows]))
    console.log(line);
  console.log(`total ${humanBytes(total)}; kjx cache clean [KIND...] [--older-than DAYS] removes entries`);
  if (other.length) console.log(`not kjx's, left alone: ${other.join(', ')}`);
}

function clean(root: string, names: string[], o: { olderThan?: string; dryRun?: boolean }): void {
  const kinds = kindsNamed(names);
  const age = o.olderThan === undefined ? undefined : olderThanMs(o.olderThan);
  if (!existsSync(root)) {
    console.log(`nothing cached: ${root} does not exist`);
    return;
  }
  const now = Date.now();
  const chosen = cacheEntries(root, kinds).filter((e) => age === undefined || now - e.lastUsed >= age);
  const busy = chosen.filter((e) => e.inUse);
  const gone = chosen.filter((e) => !e.inUse);
  for (const e of gone) if (!o.dryRun) removeEntry(e);
  const verb = o.dryRun ? 'would remove' : 'removed';
  for (const k of summarize(gone, kinds))
    if (k.entries) console.log(`${verb} ${k.kind}: ${k.entries} entries, ${humanBytes(k.bytes)}`);
  for (const e of busy) console.log(`kept ${e.paths[0]!.slice(root.length + 1)}: ${e.inUse}`);
  const total = gone.reduce((a, e) => a + e.bytes, 0);
  console.log(`${verb} ${gone.length} entries, ${humanBytes(total)} (cache: ${root})`);
}

export function registerCache(program: Command): void {
  const cache = program
    .command('cache')
    .description('what kjx keeps in its cache (KJX_CACHE_DIR, else ~/.cache/kjx), and removing it');
  cache
    .command('list', { isDefault: true })
    .description('the kinds of entries, how many, their size and when they were last used')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => list(cacheRoot(), !!o.json));
  cache
    .command('clean')
    .description('remove cache entries, of every kind or of the kinds named; each comes back when needed')
    .argument('[kinds...]', 'kinds of entries (kjx cache lists them)')
    .option('--older-than <days>', 'only entries not read or written for this many days')
    .option('--dry-run', 'say what would be removed, remove nothing')
    .action((names: string[], o: { olderThan?: string; dryRun?: boolean }) => clean(cacheRoot(), names, o));
}
