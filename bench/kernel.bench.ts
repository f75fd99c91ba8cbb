/**
 * Kernels (`npm run bench kernel`, only when asked: it compiles a kernel): the
 * default image on Debian's packaged kernel next to the same image on the kernel kjx
 * builds from linux-source-6.1 with the `vm` profile (docs/kernels.md), measured in
 * turns in the same run, the built one also on the microvm machine (`--machine
 * microvm`): `kjx run --cold --no-save -- true` (wall time and boot
 * phases), `kjx boot --detach` until SSH answers (`kjx exec -- true`), the kernels'
 * sizes; and the build itself: a first build in an empty cache (the .debs
 * copied in), whether it gave the same bytes as the build in the shared cache, and
 * the no-op rebuild. Medians; targets reported, never asserted.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
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

/** Every file of a built kernel in a cache (`kernel/built/<key>`: bzImage, vmlinux, .config, modules), by relative path. */
function builtFiles(cache: string, key: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out.set(`${rel}${e.name}`, readFileSync(join(d, e.name)));
    }
  };
  walk(join(cache, 'kernel', 'built', key), '');
  return out;
}

/**
 * A first build of the built-kernel spec in a cache that has the .debs but no kernel:
 * its time, and the files of its result that differ from the same kernel built in the
 * shared cache (another source and object directory, another time): reproducibility
 * of the whole `vm` profile, which the test suite cannot afford a second build for.
 */
function firstBuild(): { s: number; files: number; differ: string[] } {
  const cache = mkdtempSync(join(tmpdir(), 'kjx-bench-kcache-'));
  const ws = mkdtempSync(join(tmpdir(), 'kjx-bench-kfirst-'));
  try {
    mkdirSync(join(cache, 'debs'));
    for (const f of readdirSync(join(CACHE, 'debs'))) cpSync(join(CACHE, 'debs', f), join(cache, 'debs', f));
    writeFileSync(join(ws, 'kjx.yaml'), BUILT_SPEC);
    const { s } = timed(['build'], ws, { KJX_CACHE_DIR: cache });
    const [key, ...more] = readdirSync(join(cache, 'kernel', 'built'));
    if (!key || more.length > 0) throw new Error(`expected one built kernel in ${cache}`);
    const a = builtFiles(cache, key);
    // another key: the same inputs did not even give the same .config or toolchain
    if (!existsSync(join(CACHE, 'kernel', 'built', key)))
      return { s, files: a.size, differ: [`the key ${key} (no such build in the shared cache)`] };
    const b = builtFiles(CACHE, key);
    const names = new Set([...a.keys(), ...b.keys()]);
    const differ = [...names].filter((n) => !a.get(n)?.equals(b.get(n) ?? Buffer.alloc(0)));
    return { s, files: names.size, differ };
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
  try {
    execFileSync(process.execPath, [KJX, 'init'], { cwd: packaged });
    writeFileSync(join(built, 'kjx.yaml'), BUILT_SPEC);
    for (const d of [packaged, built]) timed(['build'], d);
    const first = firstBuild();
    const noop: number[] = [];
    for (let i = 0; i < 5; i++) noop.push(timed(['build'], built).s);

    // the built kernel on q35 and on microvm (--machine), the packaged one on q35
    const KINDS = ['packaged', 'built', 'microvm'] as const;
    type Kind = (typeof KINDS)[number];
    const dir = (k: Kind) => (k === 'packaged' ? packaged : built);
    const machine = (k: Kind) => (k === 'microvm' ? ['--machine', 'microvm'] : []);
    const env = { KJX_STATE_DIR: state };
    // microvm's TSC rate is measured once per host boot (src/vm/tsc-rate.ts): not in the runs below
    timed(['run', ...machine('microvm'), '--cold', '--no-save', '--accel', 'tcg', '--', 'true'], built, env);
    const runs = { packaged: [] as number[], built: [] as number[], microvm: [] as number[] };
    const phases = { packaged: [], built: [], microvm: [] } as Record<Kind, Record<string, number>[]>;
    for (let i = 0; i < PAIRS; i++)
      for (const k of KINDS) {
        const args = ['run', ...machine(k), '--cold', '--no-save', '--accel', 'tcg', '--json', '--', 'true'];
        const r = timed(args, dir(k), env);
        runs[k].push(r.s);
        phases[k].push(JSON.parse(r.stdout).phases);
      }
    const ssh = { packaged: [] as number[], built: [] as number[], microvm: [] as number[] };
    for (let i = 0; i < 5; i++)
      for (const k of KINDS) {
        const t = performance.now();
        timed(['boot', '--detach', ...machine(k), '--name', `kb-${k}`, '--accel', 'tcg'], dir(k), env);
        timed(['exec', `kb-${k}`, '--', 'true'], dir(k), env);
        ssh[k].push((performance.now() - t) / 1000);
        kjx(['stop', `kb-${k}`], dir(k), env);
      }

    const ph = (k: Kind, a: string, b: string) =>
      median(phases[k].map((p) => p[b]! - (a === '' ? 0 : p[a]!)).filter((x) => Number.isFinite(x)));
    const manifestSha = (d: string) =>
      JSON.parse(
        execFileSync('cat', [join(d, 'dist', 'manifest.json')], { encoding: 'utf8' }),
      ).artifacts.find((a: { name: string }) => a.name === 'vmlinuz')?.sha256 as string | undefined;
    const size = (d: string) => statSync(join(d, 'dist', 'vmlinuz')).size / 2 ** 20;
    const pvh = (d: string) => (pvhVmlinuxSize(manifestSha(d) ?? '') ?? Number.NaN) / 2 ** 20;
    const lines: BenchLine[] = [];
    const title = { packaged: 'packaged kernel', built: 'built kernel', microvm: 'built kernel on microvm' };
    for (const k of KINDS) {
      const init = ph(k, 'kernelStart', 'initExec');
      const aimed = k !== 'packaged';
      lines.push(
        { name: `${title[k]}: QEMU start → kernel start`, value: ph(k, '', 'kernelStart'), unit: 's' },
        {
          name: `${title[k]}: kernel start → init exec`,
          value: init,
          unit: 's',
          ...(aimed ? { target: '<= 0.3 s', ok: init <= 0.3 } : {}),
        },
        {
          name: `${title[k]}: kjx run -- true, wall time`,
          value: median(runs[k]),
          unit: 's',
          runs: runs[k],
          ...(aimed ? { target: '<= 1.2 s', ok: median(runs[k]) <= 1.2 } : {}),
        },
        {
          name: `${title[k]}: kjx boot --detach until kjx exec answers over SSH`,
          value: median(ssh[k]),
          unit: 's',
          runs: ssh[k],
          ...(aimed ? { target: '<= 2.0 s', ok: median(ssh[k]) <= 2 } : {}),
        },
      );
    }
    for (const k of ['packaged', 'built'] as const)
      lines.push(
        { name: `${k} kernel: bzImage`, value: size(dir(k)), unit: 'MiB' },
        { name: `${k} kernel: vmlinux QEMU boots (PVH, stripped)`, value: pvh(dir(k)), unit: 'MiB' },
      );
    // the kernel phase and the whole run of one variant against another, measured in the same turns
    const ratios = (label: string, a: Kind, b: Kind): BenchLine[] => [
      {
        name: `${label}: kernel start → init exec`,
        value: ph(a, 'kernelStart', 'initExec') / ph(b, 'kernelStart', 'initExec'),
        unit: 'x',
      },
      { name: `${label}: kjx run -- true`, value: median(runs[a]) / median(runs[b]), unit: 'x' },
    ];
    lines.push(
      ...ratios('built/packaged', 'built', 'packaged'),
      ...ratios('microvm/q35 (built kernel)', 'microvm', 'built'),
      {
        name: 'first kernel build (empty cache, .debs present), kjx build wall time',
        value: first.s / 60,
        unit: 'min',
        target: '<= 20 min',
        ok: first.s <= 20 * 60,
      },
      {
        name: 'vm profile built in two cache directories: files that differ (bzImage, vmlinux, config, modules)',
        value: first.differ.length,
        unit: 'files',
        target: '0',
        ok: first.differ.length === 0,
        note: `of ${first.files}${first.differ.length > 0 ? `: ${first.differ.slice(0, 20).join(', ')}` : ''}`,
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
