/**
 * `kjx run -- true` end to end, as a user runs it (Node start-up, the no-op build
 * check, the accelerator verdict, boot, command, power-off): median of 5 wall times,
 * and the boot phases the runs reported. Also a guest whose init exits (a kernel
 * panic): how soon `kjx run` reports it (test/integration/run.test.ts bounds it
 * loosely; the target is here).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BenchLine, median } from './build.bench.js';

const ROOT = join(import.meta.dirname, '..');
const KJX = join(ROOT, 'bin', 'kjx.js');
const env = { ...process.env, CI: '1', KJX_CACHE_DIR: join(ROOT, '.kjx', 'test-cache') };

export async function benchRun(): Promise<BenchLine[]> {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-bench-run-'));
  const state = mkdtempSync(join(tmpdir(), 'kjx-bench-state-'));
  try {
    execFileSync(process.execPath, [KJX, 'init'], { cwd: ws, env });
    execFileSync(process.execPath, [KJX, 'build'], { cwd: ws, env, stdio: 'ignore' });
    const wall: number[] = [];
    const phases: Record<string, number>[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const r = spawnSync(process.execPath, [KJX, 'run', '--json', '--', 'true'], {
        cwd: ws,
        env: { ...env, KJX_STATE_DIR: state },
        encoding: 'utf8',
      });
      wall.push((performance.now() - t) / 1000);
      if (r.status !== 0) throw new Error(`kjx run -- true failed (${r.status}):\n${r.stderr}`);
      phases.push(JSON.parse(r.stdout).phases);
    }
    const ph = (k: string) => median(phases.map((p) => p[k]!).filter((x) => x !== undefined));
    const panic = panicRuns(state);
    return [
      {
        name: 'kjx run -- true, wall time',
        value: median(wall),
        unit: 's',
        target: '<= 2.5 s',
        ok: median(wall) <= 2.5,
        runs: wall,
      },
      { name: 'kjx run: QEMU start → kernel start', value: ph('kernelStart'), unit: 's' },
      {
        name: 'kjx run: kernel start → init exec',
        value: ph('initExec') - ph('kernelStart'),
        unit: 's',
        target: '<= 1.0 s',
        ok: ph('initExec') - ph('kernelStart') <= 1,
      },
      { name: 'kjx run: init exec → stage 2', value: ph('stage2') - ph('initExec'), unit: 's' },
      { name: 'kjx run: stage 2 → services ready', value: ph('ready') - ph('stage2'), unit: 's' },
      { name: 'kjx run: ready → command done', value: ph('commandDone') - ph('ready'), unit: 's' },
      { name: 'kjx run: command done → QEMU exit', value: ph('qemuExit') - ph('commandDone'), unit: 's' },
      {
        name: 'kjx run, init exits: panic status 123 and line, wall time',
        value: median(panic),
        unit: 's',
        target: '<= 15 s',
        ok: median(panic) <= 15,
        runs: panic,
      },
    ];
  } finally {
    rmSync(ws, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  }
}

/** Wall times of `kjx run` on an image whose /init exits at once (the kernel panics). */
function panicRuns(state: string): number[] {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-bench-panic-'));
  try {
    writeFileSync(
      join(ws, 'kjx.yaml'),
      'files:\n  - path: /init\n    content: "#!/bin/sh\\necho dying\\nexit 3\\n"\n    mode: "0755"\n    override: true\n',
    );
    execFileSync(process.execPath, [KJX, 'build'], { cwd: ws, env, stdio: 'ignore' });
    const wall: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const r = spawnSync(process.execPath, [KJX, 'run', '--', 'true'], {
        cwd: ws,
        env: { ...env, KJX_STATE_DIR: state },
        encoding: 'utf8',
      });
      wall.push((performance.now() - t) / 1000);
      if (r.status !== 123 || !/Kernel panic - not syncing/.test(r.stderr))
        throw new Error(`kjx run on a panicking image: status ${r.status}, not 123:\n${r.stderr}`);
    }
    return wall;
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}
