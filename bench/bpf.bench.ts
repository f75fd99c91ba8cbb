/**
 * tracing.programs (part of `npm run bench trace`, or alone as `npm run bench bpf`):
 * `kjx trace prog` wall times, the host compile of a small
 * program, cold (a fresh cache: vmlinux.h from the kernel's BTF, kjx-bpf-run, clang,
 * llvm-strip) and cached (what every later build pays), and the initramfs growth a
 * program with the generic loader brings. Targets from issue 16: cold <= 5 s,
 * cached <= 0.1 s, generic loader <= 1 MiB.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePrograms } from '../src/bpf/compile.js';
import { kernelBtf } from '../src/bpf/kernel-btf.js';
import { requireToolchain } from '../src/bpf/toolchain.js';
import { unpackVmlinux } from '../src/rootfs/bzimage.js';
import { openCache } from '../src/sources/cache.js';
import type { ProgramSpec } from '../src/spec/programs.js';
import { sha256 } from '../src/util/hash.js';
import { type BenchLine, median } from './build.bench.js';

const ROOT = join(import.meta.dirname, '..');
const EXAMPLES = join(ROOT, 'examples', 'bpf-programs');
const KJX = join(ROOT, 'bin', 'kjx.js');
const env = { ...process.env, CI: '1', KJX_CACHE_DIR: join(ROOT, '.kjx', 'test-cache') };
const MiB = 1024 * 1024;

function workspace(spec: string): string {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-bench-bpf-'));
  writeFileSync(join(ws, 'kjx.yaml'), spec);
  return ws;
}

function build(ws: string): number {
  execFileSync(process.execPath, [KJX, 'build'], { cwd: ws, env, stdio: 'ignore', maxBuffer: 1 << 26 });
  return statSync(join(ws, 'dist', 'initramfs.cpio.gz')).size;
}

/** `kjx trace ARGS --json` (trace.bench.ts's too): wall times (median of `n`) and the last summary. */
export function traceTimes(
  ws: string,
  args: string[],
  n: number,
): { wall: number[]; summary: Record<string, unknown> } {
  const wall: number[] = [];
  let summary: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, [KJX, 'trace', '--json', '--accel', 'tcg', ...args], {
      cwd: ws,
      env,
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    wall.push((performance.now() - t) / 1000);
    if (r.status !== 0) throw new Error(`kjx trace ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
    summary = JSON.parse(r.stdout);
  }
  return { wall, summary };
}

/** `kjx trace prog …`: wall times and the attach time the last run's summary gives. */
function trace(ws: string, args: string[], n: number): { wall: number[]; attach: number } {
  const { wall, summary } = traceTimes(ws, args, n);
  return { wall, attach: Number(summary.attachS) };
}

/** Everything about tracing.programs: images, compile, traces. */
export async function benchBpf(): Promise<BenchLine[]> {
  const BASE = 'components: [busybox, runit, dropbear]\n';
  const dirs: string[] = [];
  try {
    const base = workspace(`name: bpfbench\n${BASE}`);
    dirs.push(base);
    const baseBytes = build(base);
    const lines = await benchPrograms(join(base, 'dist', 'vmlinuz'));
    const prog = workspace(
      `name: bpfbench\n${BASE}tracing:\n  programs:\n    - {name: execs, bpf: ./execs.bpf.c}\n`,
    );
    dirs.push(prog);
    cpSync(join(EXAMPLES, 'execs.bpf.c'), join(prog, 'execs.bpf.c'));
    lines.push(genericLoaderGrowth(baseBytes, build(prog)));
    const ex = mkdtempSync(join(tmpdir(), 'kjx-bench-bpf-'));
    dirs.push(ex);
    cpSync(EXAMPLES, ex, { recursive: true });
    build(ex);
    const rq = trace(ex, ['prog', 'runqlat', '--duration', '3', '--', 'sh', '-c', 'while :; do :; done'], 3);
    lines.push({
      name: 'kjx trace prog runqlat --duration 3 -- busy loop, wall time (boot, load, attach, 3 s, maps, render)',
      value: median(rq.wall),
      unit: 's',
      runs: rq.wall,
      note: `attach ${rq.attach.toFixed(2)} s in the guest`,
    });
    const go = trace(ex, ['prog', 'gosyscount', '--', 'cat', '/etc/os-release'], 1);
    lines.push({
      name: 'kjx trace prog gosyscount -- cat /etc/os-release (Go loader), wall time',
      value: go.wall[0]!,
      unit: 's',
      note: `attach ${go.attach.toFixed(2)} s in the guest (the Go runtime starting under TCG)`,
    });
    return lines;
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** `vmlinuz`: a built image's kernel (its BTF is what programs compile against). */
export async function benchPrograms(vmlinuz: string): Promise<BenchLine[]> {
  const elf = await unpackVmlinux(readFileSync(vmlinuz));
  if (!elf.ok) throw new Error(elf.why);
  const data = kernelBtf(elf.elf)!;
  const btf = { sha: sha256(data), data: async () => data };
  const program: ProgramSpec = {
    name: 'execs',
    bpf: join(EXAMPLES, 'execs.bpf.c'),
    bpfRef: './execs.bpf.c',
    loader: { kind: 'generic' },
  };
  // the first program on a kernel also pays vmlinux.h and kjx-bpf-run (once per kernel,
  // once per toolchain); "cold" is a program of which nothing is cached yet
  const warmup: ProgramSpec = {
    ...program,
    name: 'warmup',
    bpf: join(EXAMPLES, 'runqlat.bpf.c'),
    bpfRef: './runqlat.bpf.c',
  };
  const toolchain = requireToolchain([program]);
  const compile = async (root: string, p = program) => {
    const t = performance.now();
    const c = await compilePrograms({
      programs: [p],
      specDir: EXAMPLES,
      toolchain,
      btf,
      cache: openCache(root),
    });
    return { s: (performance.now() - t) / 1000, c };
  };
  const first: number[] = [];
  const cold: number[] = [];
  const cached: number[] = [];
  const roots: string[] = [];
  let loaderBytes = 0;
  try {
    for (let i = 0; i < 3; i++) {
      const root = mkdtempSync(join(tmpdir(), 'kjx-bench-bpf-'));
      roots.push(root);
      const r = await compile(root, warmup);
      first.push(r.s);
      loaderBytes = r.c.genericLoader.length;
      cold.push((await compile(root)).s);
    }
    for (let i = 0; i < 5; i++) cached.push((await compile(roots[0]!)).s);
  } finally {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  }
  const load = `load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${cpus().length} CPUs`;
  return [
    {
      name: 'tracing.programs: compile a small program (execs.bpf.c), cold: clang -target bpf, llvm-strip',
      value: median(cold),
      unit: 's',
      target: '<= 5 s',
      ok: median(cold) <= 5,
      runs: cold,
      note: load,
    },
    {
      name: 'tracing.programs: the first program on a kernel and toolchain (also vmlinux.h from BTF and kjx-bpf-run)',
      value: median(first),
      unit: 's',
      runs: first,
      note: load,
    },
    {
      name: 'tracing.programs: compile a small program, cached',
      value: median(cached),
      unit: 's',
      target: '<= 0.1 s',
      ok: median(cached) <= 0.1,
      runs: cached,
      note: `kjx-bpf-run is ${(loaderBytes / 1024).toFixed(0)} KiB (libbpf, libelf, zlib linked in; libc dynamic)`,
    },
  ];
}

/** The initramfs growth of one program with the generic loader, from two built images' sizes. */
export function genericLoaderGrowth(baseBytes: number, withProgramBytes: number): BenchLine {
  const grow = (withProgramBytes - baseBytes) / MiB;
  return {
    name: 'initramfs growth, default image + one program with the generic loader (execs.bpf.c)',
    value: grow,
    unit: 'MiB',
    target: '<= 1 MiB',
    ok: grow <= 1,
    note: 'kjx-bpf-run, kjx-prog, kjx-bpf-ready and the object, gzip',
  };
}
