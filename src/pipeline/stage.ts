/**
 * The build as a table of stages (stages.ts) and the one runner that drives it.
 * A stage names what its result depends on (`key(plan)`), how to keep and find
 * that result in the cache, the packages it reads, and how to compute it; the
 * runner does the rest the same way for every stage:
 *
 * - every key is computed from the Plan before any heavy work; the last stage's
 *   key is the build's (the output directory's record), so a build whose key
 *   matches intact artifacts there does nothing at all (the no-op check);
 * - the packages of the stages that will run are fetched together, first;
 * - a stage whose result is in the cache loads it (and says its warnings again)
 *   instead of running; a computed one is stored with the warnings it gave;
 * - progress events name each stage, cached or run, with its time;
 * - artifacts are written to temporary names and renamed, the build record last.
 *
 * Keys are computed twice: with a hash of kjx's code (cache keys: a changed
 * stage never reuses an older one's result) and with kjx's release in its place
 * (the build id, which lands in the image: the compiled CLI and the sources of a
 * release build the same bytes).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../plan/plan.js';
import type { ResolvedPackage } from '../sources/apt.js';
import { type Cache, getRecord, putRecord } from '../sources/cache.js';
import { fetchDebs } from '../sources/fetch.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { WarnFn, Warning } from '../util/errors.js';
import { fileStamp } from '../util/file-stamp.js';
import { hashValue, sha256 } from '../util/hash.js';
import { sha256File } from '../util/hash-file.js';

export interface Artifact {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

/** The keys of the stages that have one, by stage name. */
export type StageKeys = Readonly<Record<string, string>>;

export interface StageContext {
  plan: Plan;
  cache: Cache;
  warn: WarnFn;
  /** A line worth showing under the stage (downloads, sizes). */
  progress(text: string): void;
  /** The result of an earlier stage. */
  result<T>(stage: string): T;
  /** .deb bytes by package name: what the fetch stage got. */
  debs: Map<string, Buffer>;
  /** The .debs of these packages, fetched now for those the fetch stage did not get. */
  debsOf(packages: readonly ResolvedPackage[]): Promise<Map<string, Buffer>>;
  /** Whether a stage's result comes from the cache in this build (so its packages were not fetched). */
  cached(stage: string): boolean;
  /** The packages the stages that run read (what the fetch stage fetches). */
  needed(): ResolvedPackage[];
  keys: StageKeys;
  buildId: string;
  outDir: string;
  /** Write an artifact into the output directory (temporary name, then rename). */
  emit(name: string, data: Buffer, mode?: number): Artifact;
  /** Record an artifact another writer wrote (media, from their own temporary names). */
  add(artifact: Artifact): void;
  /** The artifacts written so far, in order. */
  artifacts(): Artifact[];
}

export interface StageRun<T> {
  value: T;
  detail?: string;
  /** Shown as cached although the stage ran (the fetch stage with nothing to fetch). */
  cached?: boolean;
}

export interface Stage<T = unknown> {
  name: string;
  /** What progress displays show. */
  title: string;
  /**
   * What the result depends on, hashed into the stage's key: the Plan's fields
   * it reads, `code` (which kjx builds), the keys of the stages it reads from.
   */
  key?(plan: Plan, code: string, keys: StageKeys): unknown;
  /**
   * What the result depends on from the build host (the identity of the compilers a
   * stage runs): in the cache keys, not in the build id, which names the inputs and
   * kjx's release so that two hosts build the same image id.
   */
  host?(plan: Plan): unknown;
  /** Packages `run` reads; fetched together before the first stage runs, unless the result is cached. */
  debs?(plan: Plan): readonly ResolvedPackage[];
  /** A cached result for the key, or undefined (absent or damaged: the stage then runs). */
  load?(cache: Cache, key: string): T | undefined;
  /** Keep a computed result under its key. */
  save?(cache: Cache, key: string, value: T): void;
  run(ctx: StageContext): Promise<StageRun<T>>;
  /** The detail shown for a cached result. */
  cachedDetail?(value: T): string;
}

/** Whether a stage's result is kept in the cache. */
function cachedStage(s: Stage): boolean {
  return s.key !== undefined && s.load !== undefined && s.save !== undefined;
}

/**
 * Each stage's key for `code`; the last stage's is the build's. With `host`, the
 * cache keys (the build host's tools count); without, the build id's.
 */
export function stageKeys(stages: readonly Stage[], plan: Plan, code: string, host = true): StageKeys {
  const keys: Record<string, string> = {};
  for (const s of stages) {
    if (!s.key) continue;
    const own = s.key(plan, code, keys);
    const tools = host ? s.host?.(plan) : undefined;
    keys[s.name] = hashValue(tools === undefined ? own : { own, host: tools });
  }
  return keys;
}

export interface BuildEvents {
  stageStart?(name: string): void;
  stageEnd?(name: string, info: { cached: boolean; detail?: string; ms: number }): void;
  /** A line worth showing under the current stage (downloads, sizes). */
  progress?(name: string, text: string): void;
}

export interface StageReport {
  name: string;
  cached: boolean;
  ms: number;
  detail?: string;
}

/** Time one step, with its start and end events. */
export async function timed<T>(
  name: string,
  events: BuildEvents,
  reports: StageReport[],
  fn: () => Promise<StageRun<T>>,
): Promise<T> {
  events.stageStart?.(name);
  const s = performance.now();
  const r = await fn();
  const ms = performance.now() - s;
  const info = { cached: r.cached ?? false, ms, ...(r.detail ? { detail: r.detail } : {}) };
  reports.push({ name, ...info });
  events.stageEnd?.(name, info);
  return r.value;
}

/** The output directory's record of the build that wrote its artifacts. */
export interface BuildRecord {
  key: string;
  buildId: string;
  artifacts: Artifact[];
  kernelVersion: string;
  /** What the build warned about: a no-op build says it again, so --strict holds. */
  warnings?: Warning[];
  /** Each artifact's file status when its sha256 was last checked, by path (artifactStamp). */
  stamps?: Record<string, string>;
}

export const RECORD = '.kjx-build.json';

/** The output directory's build record; a damaged one counts as none (the build then runs). */
export function readBuildRecord(path: string): BuildRecord | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const rec = JSON.parse(readFileSync(path, 'utf8')) as BuildRecord;
    return typeof rec?.key === 'string' && Array.isArray(rec.artifacts) ? rec : undefined;
  } catch {
    return undefined;
  }
}

function stampsOf(artifacts: Artifact[]): Record<string, string> {
  return Object.fromEntries(artifacts.map((a) => [a.path, fileStamp(a.path)]));
}

/**
 * Are the record's artifacts there with the bytes it names? A file whose stamp is the
 * one recorded when it was last hashed is; any other is hashed again (every `kjx run`
 * asks this, and hashing a 14 MiB kernel and its initramfs took 0.5 s of each run).
 * `restamp` says the stamps are stale but the bytes good (a copy, a touch).
 */
export function artifactsIntact(rec: BuildRecord): { intact: boolean; restamp: boolean } {
  let restamp = false;
  const intact = rec.artifacts.every((a) => {
    try {
      if (rec.stamps?.[a.path] !== undefined && rec.stamps[a.path] === fileStamp(a.path)) return true;
      restamp = true;
      // streamed: disk images can be gigabytes
      return statSync(a.path).size === a.size && sha256File(a.path) === a.sha256;
    } catch {
      return false;
    }
  });
  return { intact, restamp: intact && restamp };
}

export interface RunInputs {
  stages: readonly Stage[];
  plan: Plan;
  cache: Cache;
  outDir: string;
  /** The code hash (cache keys) and the release name (build id) keys are computed with. */
  code: string;
  release: string;
  events: BuildEvents;
  /** Every warning goes here (the caller keeps them for the record). */
  warn: WarnFn;
  /** The warnings so far, for the record the last stage writes. */
  warnings(): Warning[];
  reports: StageReport[];
}

export interface RunOutcome {
  buildId: string;
  artifacts: Artifact[];
  noop: boolean;
  /** What the last stage returned (or the record said, for a no-op). */
  kernelVersion: string;
  results: Map<string, unknown>;
}

/**
 * Run the stage table for a plan. The last stage writes the artifacts through
 * `ctx.emit` and returns `{ kernelVersion }`; the runner then writes the record.
 */
export async function runStages(i: RunInputs): Promise<RunOutcome> {
  const { stages, plan, cache, events } = i;
  const keys = stageKeys(stages, plan, i.code);
  const last = stages[stages.length - 1]!;
  const finalKey = keys[last.name]!;
  const buildId = stageKeys(stages, plan, i.release, false)[last.name]!.slice(0, 12);

  const recordPath = join(i.outDir, RECORD);
  const prev = readBuildRecord(recordPath);
  const check = prev && prev.key === finalKey ? artifactsIntact(prev) : undefined;
  if (prev && check?.intact) {
    if (check.restamp) {
      try {
        writeFileAtomic(
          recordPath,
          `${JSON.stringify({ ...prev, stamps: stampsOf(prev.artifacts) }, null, 2)}\n`,
        );
      } catch {
        // a read-only output directory: the next check hashes again
      }
    }
    for (const w of prev.warnings ?? []) i.warn(w);
    for (const s of stages) {
      events.stageStart?.(s.name);
      i.reports.push({ name: s.name, cached: true, ms: 0 });
      events.stageEnd?.(s.name, { cached: true, ms: 0, detail: 'unchanged' });
    }
    return {
      buildId,
      artifacts: prev.artifacts,
      noop: true,
      kernelVersion: prev.kernelVersion,
      results: new Map(),
    };
  }

  // which cached stages have a result (a damaged one found later runs anyway, fetching then)
  const fromCache = new Set(
    stages.filter((s) => cachedStage(s) && getRecord(cache, keys[s.name]!) !== undefined).map((s) => s.name),
  );
  const results = new Map<string, unknown>();
  const debs = new Map<string, Buffer>();
  const artifacts: Artifact[] = [];
  const ctxFor = (s: Stage): StageContext => ({
    plan,
    cache,
    warn: i.warn,
    progress: (text) => events.progress?.(s.name, text),
    result: <T>(name: string) => {
      if (!results.has(name)) throw new Error(`stage ${s.name} reads ${name}, which has not run`);
      return results.get(name) as T;
    },
    debs,
    async debsOf(packages) {
      const missing = packages.filter((p) => !debs.has(p.name));
      if (missing.length > 0)
        for (const [n, d] of await fetchDebs(cache, missing, { warn: i.warn })) debs.set(n, d);
      return new Map(packages.map((p) => [p.name, debs.get(p.name)!]));
    },
    cached: (name) => fromCache.has(name),
    needed: () => stages.filter((x) => !fromCache.has(x.name)).flatMap((x) => x.debs?.(plan) ?? []),
    keys,
    buildId,
    outDir: i.outDir,
    emit(name, data, mode = 0o644) {
      const path = join(i.outDir, name);
      writeFileAtomic(path, data, mode);
      const a = { name, path, size: data.length, sha256: sha256(data) };
      artifacts.push(a);
      return a;
    },
    add: (a) => {
      artifacts.push(a);
    },
    artifacts: () => [...artifacts],
  });

  for (const s of stages) {
    const key = keys[s.name];
    const value = await timed(s.name, events, i.reports, async () => {
      if (cachedStage(s) && key !== undefined && fromCache.has(s.name)) {
        const got = s.load!(cache, key);
        if (got !== undefined) {
          for (const w of getRecord<Warning[]>(cache, `${key}-warnings`) ?? []) i.warn(w);
          return { value: got, cached: true, ...(s.cachedDetail ? { detail: s.cachedDetail(got) } : {}) };
        }
        // damaged: computed again, and its packages were spared by the fetch stage
        fromCache.delete(s.name);
      }
      const before = i.warnings().length;
      const r = await s.run(ctxFor(s));
      if (cachedStage(s) && key !== undefined) {
        // before the result: a result in the cache always has its warnings next to it
        putRecord(cache, `${key}-warnings`, i.warnings().slice(before));
        s.save!(cache, key, r.value);
      }
      return r;
    });
    results.set(s.name, value);
  }

  const { kernelVersion } = results.get(last.name) as { kernelVersion: string };
  const rec: BuildRecord = {
    key: finalKey,
    buildId,
    artifacts,
    kernelVersion,
    warnings: i.warnings(),
    stamps: stampsOf(artifacts),
  };
  writeFileAtomic(recordPath, `${JSON.stringify(rec, null, 2)}\n`);
  return { buildId, artifacts, noop: false, kernelVersion, results };
}
