/**
 * Snapshots at ready (`npm run bench snapshot`, docs/boot-time.md "Snapshots"), TCG,
 * cold and restored runs taken in turns in the same run, so both see the same load:
 *
 * - `kjx run -- true` end to end, booted (`--cold --no-save`) and restored: medians
 *   of KJX_BENCH_SNAPSHOT_RUNS (default 10) each, and their ratio;
 * - `kjx test` of an image with the docker component, booted and restored (the
 *   same count, KJX_BENCH_SNAPSHOT_DOCKER_RUNS to lower it, 0 to leave it out);
 * - the snapshot of the default image on disk, and its stream before compression;
 * - QEMU's peak resident memory (VmHWM) in a booted and a restored run.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BenchLine, median } from './build.bench.js';

const ROOT = join(import.meta.dirname, '..');
const KJX = join(ROOT, 'bin', 'kjx.js');
const CACHE = join(ROOT, '.kjx', 'test-cache');
const env = { ...process.env, CI: '1', KJX_CACHE_DIR: CACHE };
const RUNS = Number(process.env.KJX_BENCH_SNAPSHOT_RUNS ?? 10);
const DOCKER_RUNS = Number(process.env.KJX_BENCH_SNAPSHOT_DOCKER_RUNS ?? RUNS);

interface Timed {
  wall: number;
  how: string;
  key?: string;
  bytes?: number;
}

function kjx(ws: string, state: string, args: string[]): Timed {
  const t = performance.now();
  const r = spawnSync(process.execPath, [KJX, ...args], {
    cwd: ws,
    env: { ...env, KJX_STATE_DIR: state },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const wall = (performance.now() - t) / 1000;
  // progress, so a long group that fails late still shows what it measured
  console.error(`bench: kjx ${args.join(' ')}: ${wall.toFixed(2)} s`);
  if (r.status !== 0) throw new Error(`kjx ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const start = JSON.parse(r.stdout).start as { how: string; key?: string; saved?: { bytes: number } };
  return {
    wall,
    how: start.how,
    ...(start.key ? { key: start.key } : {}),
    ...(start.saved ? { bytes: start.saved.bytes } : {}),
  };
}

/** Booted and restored runs of `args`, in turns; checks each restored run did restore. */
function pairs(ws: string, state: string, args: string[], n: number): { cold: number[]; restored: number[] } {
  const cold: number[] = [];
  const restored: number[] = [];
  const coldRun = () => cold.push(kjx(ws, state, [args[0]!, '--cold', '--no-save', ...args.slice(1)]).wall);
  const restoredRun = () => {
    const r = kjx(ws, state, args);
    if (r.how !== 'restored') throw new Error(`a run meant to restore ${r.how}`);
    restored.push(r.wall);
  };
  // A-B-B-A: consecutive runs under TCG alternate fast and slow here (docs/boot-time.md)
  for (let i = 0; i < n; i++)
    for (const run of i % 2 ? [restoredRun, coldRun] : [coldRun, restoredRun]) run();
  return { cold, restored };
}

/** Peak resident memory of the QEMU of one `kjx run -- sleep 3`, in MiB. */
async function qemuPeakMiB(ws: string, flags: string[]): Promise<number> {
  const state = mkdtempSync(join(tmpdir(), 'kjx-bench-rss-'));
  try {
    const c = spawn(process.execPath, [KJX, 'run', '--accel', 'tcg', ...flags, '--', 'sleep', '3'], {
      cwd: ws,
      env: { ...env, KJX_STATE_DIR: state },
      stdio: 'ignore',
    });
    const done = new Promise<void>((r) => c.on('close', () => r()));
    let ended = false;
    void done.then(() => {
      ended = true;
    });
    let peak = 0;
    while (!ended) {
      const runs = join(state, 'runs');
      for (const d of existsSync(runs) ? readdirSync(runs) : []) {
        const pidFile = join(runs, d, 'qemu.pid');
        if (!existsSync(pidFile)) continue;
        try {
          const st = readFileSync(`/proc/${Number(readFileSync(pidFile, 'utf8'))}/status`, 'utf8');
          const kb = Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0);
          peak = Math.max(peak, kb / 1024);
        } catch {
          // gone already
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return peak;
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
}

export async function benchSnapshot(): Promise<BenchLine[]> {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-bench-snap-'));
  const dockerWs = mkdtempSync(join(tmpdir(), 'kjx-bench-snap-docker-'));
  const state = mkdtempSync(join(tmpdir(), 'kjx-bench-state-'));
  try {
    execFileSync(process.execPath, [KJX, 'init'], { cwd: ws, env });
    execFileSync(process.execPath, [KJX, 'build', '--snapshot', '--accel', 'tcg'], {
      cwd: ws,
      env,
      stdio: 'ignore',
    });
    const run = pairs(ws, state, ['run', '--accel', 'tcg', '--json', '--', 'true'], RUNS);
    const key = kjx(ws, state, ['run', '--accel', 'tcg', '--json', '--', 'true']).key!;
    const stream = join(CACHE, 'snapshots', `${key}.snap`);
    const onDisk = statSync(stream).size / 2 ** 20;
    const raw = execFileSync('sh', ['-c', 'zstd -q -dc "$1" | wc -c', 'sh', stream], { encoding: 'utf8' });
    const coldRss = await qemuPeakMiB(ws, ['--cold', '--no-save']);
    const restoredRss = await qemuPeakMiB(ws, []);

    let docker: { cold: number[]; restored: number[] } | undefined;
    if (DOCKER_RUNS > 0) {
      writeFileSync(
        join(dockerWs, 'kjx.yaml'),
        'name: bench-snap-docker\ncompression: zstd\ncomponents: [busybox, runit, dropbear, docker]\n',
      );
      execFileSync(process.execPath, [KJX, 'build', '--snapshot', '--accel', 'tcg'], {
        cwd: dockerWs,
        env,
        stdio: 'ignore',
      });
      docker = pairs(dockerWs, state, ['test', '--accel', 'tcg', '--json', 'docker'], DOCKER_RUNS);
    }

    const m = (x: number[]) => median(x);
    const runRatio = m(run.restored) / m(run.cold);
    const dockerLines = (d: { cold: number[]; restored: number[] }): BenchLine[] => [
      { name: 'kjx test docker, booted (--cold), wall time', value: m(d.cold), unit: 's', runs: d.cold },
      { name: 'kjx test docker, restored, wall time', value: m(d.restored), unit: 's', runs: d.restored },
      {
        name: 'kjx test docker, restored / booted',
        value: m(d.restored) / m(d.cold),
        unit: 'x',
        target: '<= 0.3',
        ok: m(d.restored) / m(d.cold) <= 0.3,
      },
    ];
    return [
      { name: 'kjx run -- true, booted (--cold), wall time', value: m(run.cold), unit: 's', runs: run.cold },
      {
        name: 'kjx run -- true, restored, wall time',
        value: m(run.restored),
        unit: 's',
        target: '<= 0.6 s',
        ok: m(run.restored) <= 0.6,
        runs: run.restored,
      },
      {
        name: 'kjx run -- true, restored / booted',
        value: runRatio,
        unit: 'x',
        target: '<= 0.3',
        ok: runRatio <= 0.3,
      },
      ...(docker ? dockerLines(docker) : []),
      {
        name: 'snapshot of the default image on disk (zstd -1)',
        value: onDisk,
        unit: 'MiB',
        target: '<= 32 MiB',
        ok: onDisk <= 32,
        note: `migration stream before compression ${(Number(raw) / 2 ** 20).toFixed(1)} MiB`,
      },
      { name: 'QEMU peak RSS, booted run', value: coldRss, unit: 'MiB' },
      {
        name: 'QEMU peak RSS, restored run',
        value: restoredRss,
        unit: 'MiB',
        note: `restore overhead ${(restoredRss - coldRss).toFixed(1)} MiB`,
      },
    ];
  } finally {
    for (const d of [ws, dockerWs, state]) rmSync(d, { recursive: true, force: true });
  }
}
