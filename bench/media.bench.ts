/**
 * Media benchmarks (`npm run bench media`): for each format (iso, raw, qcow2,
 * vmdk, tar), the time of `kjx build` with only that output into an empty output
 * directory (packages and stages already in the shared cache, so this is mostly
 * the media writer), the artifact's size, and for the bootable ones the time from
 * QEMU's start to the guest's ready marker under TCG (SeaBIOS; the ISO and raw
 * disk also with OVMF). One run each: media builds and boots are slow, and these
 * lines are for trends, not targets.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MediaFormat, mediaFileName } from '../src/image/media.js';
import { vmMediaFor } from '../src/vm/boot-media.js';
import { findOvmf } from '../src/vm/firmware.js';
import type { VmConfig } from '../src/vm/qemu-args.js';
import { startVm } from '../src/vm/session.js';
import type { BenchLine } from './build.bench.js';

const ROOT = join(import.meta.dirname, '..');
const KJX = join(ROOT, 'bin', 'kjx.js');
const SHARED_CACHE = join(ROOT, '.kjx', 'test-cache');
const FORMATS: MediaFormat[] = ['iso', 'raw', 'qcow2', 'vmdk', 'tar'];
const BOOT_TIMEOUT_MS = 240_000;
const NOTE = 'one run';

function kjx(args: string[], cwd: string): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, [KJX, ...args], {
    cwd,
    env: { ...process.env, CI: '1', KJX_CACHE_DIR: SHARED_CACHE },
    encoding: 'utf8',
    timeout: 900_000,
  });
  if (r.status !== 0) throw new Error(`kjx ${args.join(' ')} failed:\n${r.stderr}`);
  return (performance.now() - t) / 1000;
}

/** Seconds from QEMU's start to the ready marker; QEMU is always stopped. */
async function bootToReady(path: string, firmware: 'bios' | 'uefi'): Promise<number> {
  const media = vmMediaFor(path);
  const config: VmConfig = {
    accel: 'tcg',
    memoryMiB: 512,
    cpus: 1,
    kernel: '',
    cmdline: '',
    console: { kind: 'stdio' },
    media: media.kind === 'disk' ? { ...media, snapshot: true } : media,
    ...(firmware === 'uefi' ? { firmware: { kind: 'uefi' as const, path: findOvmf() } } : {}),
  };
  const vm = startVm(config);
  try {
    const ready = await vm.waitForMarker('ready', BOOT_TIMEOUT_MS);
    return (ready.at - vm.startedAt) / 1000;
  } finally {
    await vm.stop();
  }
}

export async function benchMedia(): Promise<BenchLine[]> {
  const base = mkdtempSync(join(tmpdir(), 'kjx-bench-media-'));
  const lines: BenchLine[] = [];
  try {
    kjx(['init'], base);
    const template = readFileSync(join(base, 'kjx.yaml'), 'utf8');
    if (!/^outputs: \[initramfs\]$/m.test(template)) throw new Error('the init template has no outputs line');
    for (const f of FORMATS) {
      writeFileSync(
        join(base, 'kjx.yaml'),
        template
          .replace(/^outputs: \[initramfs\]$/m, `outputs: [${f}]`)
          .replace(/^ {2}size: 1G$/m, '  size: 256M'),
      );
      // once untimed: the kernel stage differs by format (disk and fw_cfg modules)
      kjx(['build', '-o', 'warm'], base);
      const out = `dist-${f}`;
      const seconds = kjx(['build', '-o', out], base);
      const file = join(base, out, mediaFileName('kjx', f));
      const st = statSync(file);
      lines.push({
        name: `${f}: build`,
        value: seconds,
        unit: 's',
        note: `${NOTE}; \`kjx build\` into an empty directory, shared cache warm`,
      });
      lines.push({
        name: `${f}: size`,
        value: st.size / 2 ** 20,
        unit: 'MiB',
        note:
          f === 'raw'
            ? `${NOTE}; sparse: ${((st.blocks * 512) / 2 ** 20).toFixed(1)} MiB allocated on the host`
            : NOTE,
      });
      if (f === 'tar') continue;
      const firmwares: ('bios' | 'uefi')[] = f === 'iso' || f === 'raw' ? ['bios', 'uefi'] : ['bios'];
      for (const fw of firmwares) {
        lines.push({
          name: `${f}: boot to ready (${fw === 'bios' ? 'SeaBIOS' : 'OVMF'}, TCG)`,
          value: await bootToReady(file, fw),
          unit: 's',
          note: `${NOTE}; QEMU start to the ready marker`,
        });
      }
      rmSync(join(base, out), { recursive: true, force: true });
    }
    return lines;
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
