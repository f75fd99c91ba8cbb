/**
 * Boot benchmarks (`npm run bench boot`): the default image booted under TCG, from
 * QEMU's spawn to the guest's `ready` marker, with kjx's VM configuration
 * (src/vm/qemu-args.ts) next to a plain default QEMU invocation of the same kernel
 * and initramfs (SeaBIOS, default devices: an e1000 NIC with its option ROM, VGA),
 * the two measured in turns in the same run. Phases come from marker arrival times
 * on the host and the guest uptime the markers carry (docs/guest-protocol.md):
 * kernel start = arrival - uptime, so "kernel start" is when the guest's clock
 * started, just after the kernel's decompression and early setup.
 * Medians of several boots; targets are reported, not asserted (2 shared cores).
 *
 * The plain invocation is typed out here on purpose: it is the reference kjx is
 * measured against, not something kjx runs.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NONCE_FW_CFG_NAME, newNonce, parseMarker } from '../src/guest/markers.js';
import { loadSpec } from '../src/spec/load.js';
import { qemuArgv, type VmConfig } from '../src/vm/qemu-args.js';
import { type BenchLine, median } from './build.bench.js';

const ROOT = join(import.meta.dirname, '..');
const KJX = join(ROOT, 'bin', 'kjx.js');
const SHARED_CACHE = join(ROOT, '.kjx', 'test-cache');
const RUNS = 5;
const BOOT_TIMEOUT_MS = 120_000;

/** Seconds from spawn to each phase of one boot. */
export interface BootTimes {
  ready: number;
  init?: number;
  /** When the guest's clock started (spawn + marker arrival - its uptime). */
  kernelStart?: number;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Boot once (markers carrying `nonce`), follow the console until `ready`, then kill QEMU (always). */
export async function bootOnce(argv: string[], nonce: string): Promise<BootTimes> {
  const t0 = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  const exited = new Promise<void>((r) => {
    child.once('close', () => r());
    child.once('error', () => r());
  });
  const seen = new Map<string, { at: number; fields: Record<string, string> }>();
  let out = '';
  let err = '';
  try {
    return await new Promise<BootTimes>((resolve, reject) => {
      let pending = '';
      const timer = setTimeout(
        () => reject(new Error(`no ready marker within ${BOOT_TIMEOUT_MS} ms:\n${out.slice(-2000)}`)),
        BOOT_TIMEOUT_MS,
      );
      child.on('error', (e) => reject(e));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`QEMU exited (${code}) before ready:\n${err}\n${out.slice(-2000)}`));
      });
      child.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
      });
      child.stdout!.on('data', (b: Buffer) => {
        const now = performance.now();
        const s = b.toString('utf8');
        out += s;
        pending += s;
        for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
          const m = parseMarker(pending.slice(0, nl).replace(/\r$/, ''), nonce);
          pending = pending.slice(nl + 1);
          if (!m || seen.has(m.event)) continue;
          seen.set(m.event, { at: (now - t0) / 1000, fields: m.fields });
          if (m.event !== 'ready') continue;
          clearTimeout(timer);
          resolve(phases(seen));
        }
      });
    });
  } finally {
    child.kill('SIGKILL');
    await exited;
    live.delete(child);
  }
}

/** Kernel start from the first marker that carries the guest's uptime. */
function phases(seen: Map<string, { at: number; fields: Record<string, string> }>): BootTimes {
  const t: BootTimes = { ready: seen.get('ready')!.at, init: seen.get('init')?.at };
  for (const event of ['init', 'stage2', 'ready']) {
    const m = seen.get(event);
    const up = Number(m?.fields.uptime);
    if (m && Number.isFinite(up) && up > 0) {
      t.kernelStart = m.at - up;
      break;
    }
  }
  return t;
}

/**
 * The same kernel and initramfs the way QEMU boots them with nothing but the
 * essentials said (and the marker nonce, without which no marker counts).
 */
export function plainArgv(kernel: string, initrd: string, nonce: string): string[] {
  return [
    'qemu-system-x86_64',
    '-m',
    '512',
    '-kernel',
    kernel,
    '-initrd',
    initrd,
    '-append',
    'console=ttyS0',
    '-nographic',
    '-fw_cfg',
    `name=${NONCE_FW_CFG_NAME},string=${nonce}`,
  ];
}

export async function benchBoot(): Promise<BenchLine[]> {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-bench-boot-'));
  try {
    const env = { ...process.env, CI: '1', KJX_CACHE_DIR: SHARED_CACHE };
    execFileSync(process.execPath, [KJX, 'init'], { cwd: ws, env });
    execFileSync(process.execPath, [KJX, 'build'], { cwd: ws, env, stdio: 'ignore' });
    const kernel = join(ws, 'dist', 'vmlinuz');
    const initrd = join(ws, 'dist', 'initramfs.cpio.gz');
    const ours: VmConfig = {
      accel: 'tcg',
      memoryMiB: 512,
      cpus: 1,
      kernel,
      initrd,
      cmdline: loadSpec(join(ws, 'kjx.yaml')).kernel.cmdline,
      console: { kind: 'stdio' },
    };
    const nonce = newNonce();
    const oursArgv = qemuArgv({ ...ours, nonce });

    const plain: BootTimes[] = [];
    const kjx: BootTimes[] = [];
    // in turns, so a busy moment on the shared host hits both alike, and in A-B-B-A
    // order: under TCG consecutive boots here alternate fast and slow (docs/boot-time.md)
    for (let i = 0; i < RUNS; i++) {
      const pair = [
        async () => plain.push(await bootOnce(plainArgv(kernel, initrd, nonce), nonce)),
        async () => kjx.push(await bootOnce(oursArgv, nonce)),
      ];
      for (const run of i % 2 ? pair.reverse() : pair) await run();
    }
    return bootLines(plain, kjx, oursArgv);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

/** The bench lines from the boots of both configurations. */
export function bootLines(plain: BootTimes[], kjx: BootTimes[], oursArgv: string[]): BenchLine[] {
  const ready = (b: BootTimes[]) => b.map((t) => t.ready);
  const k2init = (b: BootTimes[]) =>
    b.flatMap((t) => (t.init !== undefined && t.kernelStart !== undefined ? [t.init - t.kernelStart] : []));
  const spawn2k = (b: BootTimes[]) => b.flatMap((t) => (t.kernelStart !== undefined ? [t.kernelStart] : []));
  const init2ready = (b: BootTimes[]) => b.flatMap((t) => (t.init !== undefined ? [t.ready - t.init] : []));
  const m = (xs: number[]) => (xs.length ? median(xs) : Number.NaN);
  const ratio = m(ready(kjx)) / m(ready(plain));
  const argvNote = oursArgv
    .slice(1)
    .filter((a) => !a.startsWith('/'))
    .map((a) => a.replace(/string=[0-9a-f]{32}$/, 'string=NONCE'))
    .join(' ');
  return [
    {
      name: 'plain default QEMU (SeaBIOS, default devices): spawn → ready',
      value: m(ready(plain)),
      unit: 's',
      runs: ready(plain),
    },
    {
      name: 'kjx VM configuration: spawn → ready',
      value: m(ready(kjx)),
      unit: 's',
      target: '< plain',
      ok: ratio < 1,
      runs: ready(kjx),
      note: argvNote,
    },
    { name: 'boot ratio (kjx / plain)', value: ratio, unit: 'x', target: '< 1.0', ok: ratio < 1 },
    {
      name: 'kjx VM: kernel start → init',
      value: m(k2init(kjx)),
      unit: 's',
      target: '<= 1.0 s',
      ok: m(k2init(kjx)) <= 1,
      runs: k2init(kjx),
    },
    { name: 'plain: kernel start → init', value: m(k2init(plain)), unit: 's', runs: k2init(plain) },
    {
      name: 'kjx VM: spawn → kernel start (QEMU, firmware, kernel load and decompression)',
      value: m(spawn2k(kjx)),
      unit: 's',
      runs: spawn2k(kjx),
    },
    { name: 'plain: spawn → kernel start', value: m(spawn2k(plain)), unit: 's', runs: spawn2k(plain) },
    { name: 'kjx VM: init → ready', value: m(init2ready(kjx)), unit: 's', runs: init2ready(kjx) },
    { name: 'plain: init → ready', value: m(init2ready(plain)), unit: 's', runs: init2ready(plain) },
  ];
}
