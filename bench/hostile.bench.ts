/**
 * Hostile inputs (`npm run bench hostile`): each image of
 * test/fixtures/hostile-images.ts opened as `kjx inspect` opens it. Two lines per
 * input: the time `loadArtifact` takes to refuse it (or read it, where it is only
 * wasteful), median of three in one process, against the 5 s target; and the peak
 * RSS of the real CLI on it, run under RLIMIT_DATA like the test
 * (test/helpers/bounded.ts), against 512 MiB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadArtifact } from '../src/image/read-artifact.js';
import { HOSTILE_INPUTS, writeHostileInputs } from '../test/fixtures/hostile-images.js';
import { runKjxBounded } from '../test/helpers/bounded.js';
import { type BenchLine, median } from './build.bench.js';

const TARGET_S = 5;
const TARGET_RSS_MIB = 512;

export async function benchHostile(): Promise<BenchLine[]> {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-bench-hostile-'));
  const lines: BenchLine[] = [];
  try {
    writeHostileInputs(dir);
    for (const h of HOSTILE_INPUTS) {
      const runs: number[] = [];
      let outcome = '';
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        try {
          const a = await loadArtifact(join(dir, h.file));
          outcome = `read, ${a.tree?.size ?? 0} entries`;
        } catch (e) {
          outcome = `refused: ${(e as Error).message.split('\n')[0]!.slice(0, 100)}`;
        }
        runs.push((performance.now() - t0) / 1000);
      }
      const s = median(runs);
      lines.push({
        name: `${h.file} (${h.what}): time to answer`,
        value: s,
        unit: 's',
        target: `< ${TARGET_S} s`,
        ok: s < TARGET_S,
        runs,
        note: outcome,
      });
      const r = await runKjxBounded(['inspect', h.file], { cwd: dir, timeoutMs: 120_000 });
      const mib = r.peakRss / 2 ** 20;
      lines.push({
        name: `${h.file}: peak RSS of kjx inspect`,
        value: mib,
        unit: 'MiB',
        target: `< ${TARGET_RSS_MIB} MiB`,
        ok: mib < TARGET_RSS_MIB,
        note: `exit ${r.code}, ${(r.ms / 1000).toFixed(1)} s wall with start-up`,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}
