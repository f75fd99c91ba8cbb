/**
 * Trace inputs made up in code, shaped like what the tools print in a kjx guest:
 * folded stacks of a small busy system, a runqlat histogram, a default-image boot.
 * A seeded generator makes them the same on every run.
 */
import type { FoldedStack } from '../../src/trace/folded.js';
import type { Log2Hist } from '../../src/trace/histogram.js';
import type { Phases, ServiceEvent } from '../../src/vm/boot-phases.js';

/** A tiny deterministic PRNG (mulberry32), so fixtures never change between runs. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PROCS = ['sshd', 'kworker/u4:2-events', 'runsv', 'dropbear', 'Web Content', 'swapper/0'];
const USER = ['main', '__libc_start_main', 'run_loop', 'handle_conn', 'read_packet', 'memcpy', 'poll'];
const KERNEL = [
  'entry_SYSCALL_64_after_hwframe',
  'do_syscall_64',
  '__x64_sys_read',
  'ksys_read',
  'vfs_read',
  'tty_read',
  'schedule',
  '__schedule',
  'finish_task_switch.isra.0',
];

/** Folded stacks like `offcputime -f` / `profile -f`: process first, user frames, `-`, kernel frames. */
export function sampleStacks(n = 200, seed = 1): FoldedStack[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const out: FoldedStack[] = [];
  for (let i = 0; i < n; i++) {
    const frames = [pick(PROCS)];
    const u = 1 + Math.floor(r() * 4);
    frames.push(...USER.slice(0, u), ...(r() < 0.3 ? [pick(USER.slice(4))] : []));
    if (r() < 0.7) {
      frames.push('-');
      const k = 2 + Math.floor(r() * 6);
      for (let j = 0; j < k; j++) frames.push(KERNEL[j]!);
    }
    out.push({ frames, count: 1 + Math.floor(r() * 500) });
  }
  return out;
}

/** A runqlat-like histogram: log2 buckets 0 -> 1 up to 16384 -> 32767. */
export function sampleHist(): Log2Hist {
  const counts = [3, 12, 40, 233, 742, 1021, 512, 120, 33, 9, 0, 2, 0, 0, 1];
  return {
    unit: 'usecs',
    label: 'pid = 412 sshd',
    buckets: counts.map((count, i) => ({
      low: i === 0 ? 0 : 2 ** i,
      high: 2 ** (i + 1) - 1,
      count,
    })),
  };
}

/** A `kjx run -- true` of the default image under TCG, as RunResult reports it. */
export function sampleBoot(): { phases: Phases; services: ServiceEvent[] } {
  return {
    phases: { kernelStart: 0.52, initExec: 2.31, stage2: 2.62, ready: 4.95, commandDone: 5.1, qemuExit: 5.6 },
    services: [
      { name: 'console', state: 'up', uptime: 2.2 },
      { name: 'network', state: 'up', uptime: 2.21 },
      { name: 'console', state: 'ready', uptime: 2.25 },
      { name: 'ssh', state: 'up', uptime: 2.3 },
      { name: 'network', state: 'ready', uptime: 3.7 },
      { name: 'ssh', state: 'ready', uptime: 3.91 },
      { name: 'ssh', state: 'down', uptime: 4.9 },
    ],
  };
}
