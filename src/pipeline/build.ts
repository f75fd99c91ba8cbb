/**
 * `kjx build`: read kjx.yaml (Spec), plan (Plan: components merged, packages at
 * exact versions, inputs by content), then run the stage table (stages.ts) with
 * the generic runner (stage.ts): fetch -> base -> kernel -> files -> write.
 *
 * Each stage is keyed by the hash of what it reads (and of kjx's own code); a stage
 * whose key is in the cache does no work, and a build whose final key matches the
 * artifacts already in the output directory does nothing at all. Artifacts are
 * written to temporary names and renamed, and the build record last, so a build
 * killed at any moment leaves the previous good artifacts or the new ones.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Plan, planBuild } from '../plan/plan.js';
import { type AptIndex, hostAptIndex } from '../sources/apt.js';
import { type Cache, openCache } from '../sources/cache.js';
import type { Spec } from '../spec/schema.js';
import type { WarnFn, Warning } from '../util/errors.js';
import { knownValid } from '../util/known-valid.js';
import { abandonedTemp } from '../util/pid.js';
import { codeHash } from './code-hash.js';
import { loadSpecCached } from './spec-cache.js';
import { type Artifact, type BuildEvents, runStages, type StageReport, timed } from './stage.js';
import { BUILD_STAGES, initramfsName, portableSpec, STAGES } from './stages.js';

/** kjx's release, from package.json (beside both src/ and build/). */
const KJX_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export { DEFAULT_EPOCH } from '../plan/plan.js';
export { type Artifact, type BuildEvents, initramfsName, portableSpec, STAGES };
/** A step a build reports: a planning step or a stage of the table. */
export type StageName = string;

export interface BuildOptions {
  specPath: string;
  /** The spec read from `specPath`, when the caller has it already (a boot reads kjx.yaml once). */
  spec?: Spec;
  outDir: string;
  updateLock?: boolean;
  cache?: Cache;
  index?: AptIndex;
  events?: BuildEvents;
  warn?: WarnFn;
}

export interface BuildResult {
  buildId: string;
  artifacts: Artifact[];
  noop: boolean;
  ms: number;
  stages: StageReport[];
  kernelVersion: string;
  lockChanged: boolean;
  /** What was built, as planned (memory, services, components, packages). */
  plan: Plan;
}

/** Remove temporary files that builds killed mid-write left behind (their pid is gone). */
function sweepTemps(dir: string): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir))
    if (abandonedTemp(name)) rmSync(join(dir, name), { recursive: true, force: true });
}

/** Run the whole pipeline. Throws KjxError for anything the user can fix. */
export async function build(opts: BuildOptions): Promise<BuildResult> {
  const t0 = performance.now();
  const events = opts.events ?? {};
  // every warning is kept with what caused it (the build record, a cached stage) and
  // said again when that result is reused, so `--strict` does not depend on the cache
  const warnings: Warning[] = [];
  const warn: WarnFn = (w) => {
    warnings.push(w);
    opts.warn?.(w);
  };
  const reports: StageReport[] = [];

  const cache = opts.cache ?? openCache();
  sweepTemps(join(cache.root, 'tmp'));
  const outDir = resolve(opts.outDir);
  sweepTemps(outDir);

  const spec = await timed('spec', events, reports, async () => ({
    value: opts.spec ?? (await loadSpecCached(opts.specPath, cache)),
  }));
  const plan = await timed('resolve', events, reports, async () => {
    const p = await planBuild(spec, {
      lockPath: join(spec.specDir, 'kjx.lock'),
      updateLock: opts.updateLock ?? false,
      index: opts.index ?? hostAptIndex(),
      envEpoch: process.env.SOURCE_DATE_EPOCH,
      knownLocks: knownValid(join(cache.root, 'valid', 'lock'), codeHash()),
    });
    const set = p.packages;
    return {
      value: p,
      cached: !set.lockChanged,
      detail: `${set.packages.length} packages${set.lockChanged ? ', kjx.lock written' : ' from kjx.lock'}`,
    };
  });
  if (plan.ssh.projectKey?.created)
    events.progress?.('spec', `created the project SSH key ${plan.ssh.projectKey.path}`);

  const run = await runStages({
    stages: BUILD_STAGES,
    plan,
    cache,
    outDir,
    // cache keys change with any change to kjx's code; the build id, which lands inside
    // the image, names the inputs and kjx's release instead, so the compiled CLI and the
    // sources of one release (or two checkouts of it) build the same bytes
    code: codeHash(),
    release: `kjx ${KJX_VERSION}`,
    events,
    warn,
    warnings: () => warnings,
    reports,
  });
  return {
    buildId: run.buildId,
    artifacts: run.artifacts,
    noop: run.noop,
    ms: performance.now() - t0,
    stages: reports,
    kernelVersion: run.kernelVersion,
    lockChanged: plan.packages.lockChanged,
    plan,
  };
}
