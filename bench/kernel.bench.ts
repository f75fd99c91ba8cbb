/**
 * Kernels (`npm run bench kernel`, only when asked: it compiles a kernel): the
 * default image on Debian's packaged kernel next to the same image on the kernel kjx
 * builds from linux-source-6.1 with the `vm` profile (docs/kernels.md), measured in
 * turns in the same run: `kjx run --cold --no-save -- true` (wall time and boot
 * phases), `kjx boot --detach` until SSH answers (`kjx exec -- true`), the kernels'
 * sizes; and the build itself: a first build in an empty cache (the .debs
 * copied in), and the no-op rebuild. Medians; targets reported, never asserted.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BenchLine, median } from './build.bench.js';

const ROOT = join(import.meta.dirname, '..');
const KJX = join(ROOT, 'bin', 'kjx.js');
const CACHE = join(ROOT, '.kjx', 'test-cache');
const PAIRS = 10;
const BUILT_SPEC = 'name: kbench\nkernel:\n  source: debian\n';

const kjx = (args: string[], cwd: string, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [KJX, ...args], {
    cwd,
    env: { ...process.env, CI: '1', KJX_CACHE_DIR: CACHE, ...env },
    encoding: 'utf8',
    timeout: 3_600_000,
  });

function timed(args: string[], cwd: string, env: Record<string, string> = {}) {
  const t = performance.now();
  const r = kjx(args, cwd, env);
  const s = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`kjx ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { s, stdout: r.stdout };
}

/** A first build of the built-kernel spec in a cache that has the .debs but no kernel. */
function firstBuild(): number {
  const cache = mkdtempSync(join(tmpdir(), 'kjx-bench-kcache-'));
  const ws = mkdtempSync(join(tmpdir(), 'kjx-bench-kfirst-'));
  try {
    mkdirSync(join(cache, 'debs'));
    for (const f of readdirSync(join(CACHE, 'debs'))) cpSync(join(CACHE, 'debs', f), join(cache, 'debs', f));
    writeFileSync(join(ws, 'kjx.yaml'), BUILT_SPEC);
    return timed(['build'], ws, { KJX_CACHE_DIR: cache }).s;
  } finally {
    rmSync(cache, { recursive: true, force: true });
    rmSync(ws, { recursive: true, force: true });
  }
}

/** Bytes of the vmlinux QEMU boots for an image: the PVH vmlinux kjx unpacked from its bzImage. */
function pvhVmlinuxSize(bzImageSha: string): number | undefined {
  const f = join(CACHE, 'kernels', `${bzImageSha}.vmlinux`);
  return existsSync(f) ? statSync(f).size : undefined;
}

export async function benchKernel(): Promise<BenchLine[]> {
  const packaged = mkdtempSync(join(tmpdir(), 'kjx-bench-kpkg-'));
  const built = mkdtempSync(join(tmpdir(), 'kjx-bench-kbuilt-'));
  const state = mkdtempSync(join(tmpdir(), 'kjx-bench-kstate-'));
  const ws = { packaged, built };
  try {
    execFileSync(process.execPath, [KJX, 'init'], { cwd: packaged });
    writeFileSync(join(built, 'kjx.yaml'), BUILT_SPEC);
    for (const d of [packaged, built]) timed(['build'], d);
    const first = firstBuild();
    const noop: number[] = [];
    for (let i = 0; i < 5; i++) noop.push(timed(['build'], built).s);

    const runs = { packaged: [] as number[], built: [] as number[] };
    const phases = { packaged: [] as Record<string, number>[], built: [] as Record<string, number>[] };
    for (let i = 0; i < PAIRS; i++)
      for (const k of ['packaged', 'built'] as const) {
        const r = timed(['run', '--cold', '--no-save', '--accel', 'tcg', '--json', '--', 'true'], ws[k], {
          KJX_STATE_DIR: state,
        });
        runs[k].push(r.s);
        phases[k].push(JSON.parse(r.stdout).phases);
      }
    const ssh = { packaged: [] as number[], built: [] as number[] };
    for (let i = 0; i < 5; i++)
      for (const k of ['packaged', 'built'] as const) {
        const env = { KJX_STATE_DIR: state };
        const t = performance.now();
        timed(['boot', '--detach', '--name', `kb-${k}`, '--accel', 'tcg'], ws[k], env);
        timed(['exec', `kb-${k}`, '--', 'true'], ws[k], env);
        ssh[k].push((performance.now() - t) / 1000);
        kjx(['stop', `kb-${k}`], ws[k], env);
      }

    const ph = (k: 'packaged' | 'built', a: string, b: string) =>
      median(phases[k].map((p) => p[b]! - (a === '' ? 0 : p[a]!)).filter((x) => Number.isFinite(x)));
    const manifestSha = (d: string) =>
      JSON.parse(
        execFileSync('cat', [join(d, 'dist', 'manifest.json')], { encoding: 'utf8' }),
      ).artifacts.find((a: { name: string }) => a.name === 'vmlinuz')?.sha256 as string | undefined;
    const size = (d: string) => statSync(join(d, 'dist', 'vmlinuz')).size / 2 ** 20;
    const pvh = (d: string) => (pvhVmlinuxSize(manifestSha(d) ?? '') ?? Number.NaN) / 2 ** 20;
    const lines: BenchLine[] = [];
    for (const k of ['packaged', 'built'] as const) {
      const init = ph(k, 'kernelStart', 'initExec');
      lines.push(
        { name: `${k} kernel: QEMU start → kernel start`, value: ph(k, '', 'kernelStart'), unit: 's' },
        {
          name: `${k} kernel: kernel start → init exec`,
          value: init,
          unit: 's',
          ...(k === 'built' ? { target: '<= 0.3 s', ok: init <= 0.3 } : {}),
        },
        {
          name: `${k} kernel: kjx run -- true, wall time`,
          value: median(runs[k]),
          unit: 's',
          runs: runs[k],
          ...(k === 'built' ? { target: '<= 1.2 s', ok: median(runs[k]) <= 1.2 } : {}),
        },
        {
          name: `${k} kernel: kjx boot --detach until kjx exec answers over SSH`,
          value: median(ssh[k]),
          unit: 's',
          runs: ssh[k],
          ...(k === 'built' ? { target: '<= 2.0 s', ok: median(ssh[k]) <= 2 } : {}),
        },
        { name: `${k} kernel: bzImage`, value: size(ws[k]), unit: 'MiB' },
        { name: `${k} kernel: vmlinux QEMU boots (PVH, stripped)`, value: pvh(ws[k]), unit: 'MiB' },
      );
    }
    lines.push(
      {
        name: 'built/packaged: kernel start → init exec',
        value: ph('built', 'kernelStart', 'initExec') / ph('packaged', 'kernelStart', 'initExec'),
        unit: 'x',
      },
      {
        name: 'built/packaged: kjx run -- true',
        value: median(runs.built) / median(runs.packaged),
        unit: 'x',
      },
      {
        name: 'first kernel build (empty cache, .debs present), kjx build wall time',
        value: first / 60,
        unit: 'min',
        target: '<= 20 min',
        ok: first <= 20 * 60,
      },
      {
        name: 'no-op rebuild of the built-kernel spec',
        value: median(noop),
        unit: 's',
        target: '<= 1 s',
        ok: median(noop) <= 1,
        runs: noop,
      },
    );
    return lines;
  } finally {
    for (const d of [packaged, built, state]) rmSync(d, { recursive: true, force: true });
  }
}
