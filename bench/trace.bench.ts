/**
 * `kjx trace` as a user runs it: wall time from the command to the rendered files
 * (Node start-up, the no-op build check, boot, attach, the traced command, stop,
 * transfer, parsing and SVG), median of 3, for runqlat and offcpu; and the
 * initramfs size with each tracing component on top of the default image. The
 * bpftrace image (LLVM) is built and, when it boots, profiled once.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchBpf, traceTimes } from './bpf.bench.js';
import { type BenchLine, median } from './build.bench.js';

const ROOT = join(import.meta.dirname, '..');
const KJX = join(ROOT, 'bin', 'kjx.js');
const env = { ...process.env, CI: '1', KJX_CACHE_DIR: join(ROOT, '.kjx', 'test-cache') };
const BASE = ['busybox', 'runit', 'dropbear'];

function workspace(components: string[], extra = ''): string {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-bench-trace-'));
  writeFileSync(join(ws, 'kjx.yaml'), `name: tracebench\ncomponents: [${components.join(', ')}]\n${extra}`);
  return ws;
}

/** Build; seconds and initramfs bytes. */
function build(ws: string): { seconds: number; bytes: number } {
  const t = performance.now();
  execFileSync(process.execPath, [KJX, 'build'], { cwd: ws, env, stdio: 'ignore', maxBuffer: 1 << 26 });
  return {
    seconds: (performance.now() - t) / 1000,
    bytes: statSync(join(ws, 'dist', 'initramfs.cpio.gz')).size,
  };
}

const MiB = 1024 * 1024;

export async function benchTrace(): Promise<BenchLine[]> {
  const lines: BenchLine[] = [];
  const dirs: string[] = [];
  try {
    const sizes: Record<string, number> = {};
    for (const [label, comps] of [
      ['base', BASE],
      ['+ftrace', [...BASE, 'ftrace']],
      ['+libbpf-tools', [...BASE, 'libbpf-tools']],
      ['+bpftool', [...BASE, 'bpftool']],
    ] as const) {
      const ws = workspace([...comps]);
      dirs.push(ws);
      sizes[label] = build(ws).bytes;
      lines.push({
        name: `initramfs size, ${label === 'base' ? 'default image (busybox, runit, dropbear)' : `default image ${label}`}`,
        value: sizes[label]! / MiB,
        unit: 'MiB',
        ...(label === 'base' ? {} : { note: `+${((sizes[label]! - sizes.base!) / MiB).toFixed(2)} MiB` }),
      });
    }

    // tracing.programs (also alone: npm run bench bpf)
    lines.push(...(await benchBpf()));

    // the integration test's image: both tracefs and libbpf-tools
    const ws = workspace([...BASE, 'ftrace', 'libbpf-tools']);
    dirs.push(ws);
    build(ws);
    const busy = ['--', 'sh', '-c', 'while :; do :; done'];
    const rq = traceTimes(ws, ['runqlat', '--duration', '3', ...busy], 3);
    lines.push({
      name: 'kjx trace runqlat --duration 3 -- busy loop, wall time (boot, attach, 3 s, render)',
      value: median(rq.wall),
      unit: 's',
      runs: rq.wall,
      note: `attach ${(rq.summary.attachS as number)?.toFixed(2)} s in the guest`,
    });
    const off = traceTimes(ws, ['offcpu', '--', 'sleep', '1'], 3);
    lines.push({
      name: 'kjx trace offcpu -- sleep 1, wall time (boot, attach, 1 s, symbolize, flame graph)',
      value: median(off.wall),
      unit: 's',
      runs: off.wall,
      note: `attach ${(off.summary.attachS as number)?.toFixed(2)} s in the guest, ${(off.summary.stacks as { unique: number })?.unique} stacks`,
    });
    const fcnt = traceTimes(ws, ['funccount', 'vfs_*', '--', 'cat', '/etc/os-release'], 1);
    lines.push({
      name: "kjx trace funccount 'vfs_*' -- cat /etc/os-release, wall time",
      value: fcnt.wall[0]!,
      unit: 's',
    });

    // bpftrace: LLVM in the initramfs
    const bt = workspace([...BASE, 'bpftrace']);
    dirs.push(bt);
    const b = build(bt);
    lines.push({
      name: 'initramfs size, default image +bpftrace',
      value: b.bytes / MiB,
      unit: 'MiB',
      note: `+${((b.bytes - sizes.base!) / MiB).toFixed(2)} MiB; first build ${b.seconds.toFixed(1)} s`,
    });
    try {
      const prof = traceTimes(bt, ['profile', '--duration', '3'], 1);
      lines.push({
        name: 'kjx trace profile --duration 3 (bpftrace image, 2 GiB guest), wall time',
        value: prof.wall[0]!,
        unit: 's',
        note: `attach ${(prof.summary.attachS as number)?.toFixed(2)} s in the guest, ${(prof.summary.stacks as { unique: number })?.unique} stacks`,
      });
    } catch (e) {
      lines.push({
        name: 'kjx trace profile (bpftrace image)',
        value: Number.NaN,
        unit: 's',
        note: `failed: ${String(e).slice(0, 300)}`,
      });
    }
    return lines;
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}
