/**
 * `npm run bench`: runs every benchmark group and writes bench/results.json.
 * Numbers are medians; each line says its target and whether this run met it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { benchBoot } from './boot.bench.js';
import { benchBpf } from './bpf.bench.js';
import { type BenchLine, benchBuild } from './build.bench.js';
import { benchCluster } from './cluster.bench.js';
import { benchGuest } from './guest.bench.js';
import { benchHostile } from './hostile.bench.js';
import { benchKernel } from './kernel.bench.js';
import { benchMedia } from './media.bench.js';
import { benchRun } from './run.bench.js';
import { benchRuntimes } from './runtimes.bench.js';
import { benchSnapshot } from './snapshot.bench.js';
import { benchTrace } from './trace.bench.js';

const groups: Record<string, () => Promise<BenchLine[]>> = {
  build: benchBuild,
  boot: benchBoot,
  run: benchRun,
  media: benchMedia,
  runtimes: benchRuntimes,
  trace: benchTrace,
  hostile: benchHostile,
  guest: benchGuest,
  snapshot: benchSnapshot,
  // tracing.programs alone (also part of trace)
  bpf: benchBpf,
  // several VMs at once: alone only when asked for
  cluster: benchCluster,
  // compiles a kernel (minutes): only when asked for
  kernel: benchKernel,
};
const only = process.argv.slice(2);
const results: Record<string, BenchLine[]> = {};
for (const [name, fn] of Object.entries(groups)) {
  // bpf is a part of trace, cluster boots up to 5 VMs at once, kernel compiles one: each only when asked for
  if (only.length ? !only.includes(name) : ['bpf', 'cluster', 'kernel'].includes(name)) continue;
  console.error(`bench: ${name}`);
  results[name] = await fn();
  for (const l of results[name]) {
    const mark = l.ok === undefined ? '   ' : l.ok ? 'ok ' : 'MISS';
    console.log(
      `${mark} ${l.name}: ${l.value.toFixed(3)} ${l.unit}${l.target ? ` (target ${l.target})` : ''}${l.note ? ` - ${l.note}` : ''}`,
    );
  }
}
// a partial run (`npm run bench boot`) keeps the other groups' last results
const file = join(import.meta.dirname, 'results.json');
const previous = existsSync(file)
  ? (JSON.parse(readFileSync(file, 'utf8')).results as Record<string, BenchLine[]>)
  : {};
const out = {
  date: new Date().toISOString(),
  host: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  results: { ...previous, ...results },
};
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.error('bench: wrote bench/results.json');
