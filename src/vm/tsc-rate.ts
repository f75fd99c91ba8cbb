/**
 * The guest's TSC rate under TCG, for the microvm machine (docs/boot-time.md).
 *
 * A kernel calibrates its TSC against the PIT, and under TCG on a busy host that
 * fails now and then; q35 then falls back to the HPET, but microvm has neither HPET
 * nor ACPI PM timer, marks the TSC unstable and hangs. Told the rate
 * (`tsc_early_khz=`), the kernel skips the calibration. Under TCG the guest's TSC
 * is the host's own counter (QEMU reads it for every `rdtsc`), so the rate is the
 * host's, and only the host can say it: Linux does not publish `tsc_khz`, so a
 * calibration boot on q35 (which has the HPET) reads the kernel's own figure: its
 * refined calibration against the HPET, else its early `tsc: Detected ... MHz`. The
 * boot has no initrd, waits for a root that never comes, and is ended as soon as the
 * line is there (1-2 s); the result is cached per host boot (the
 * counter's rate does not change while the host runs), one small JSON file under
 * `<cacheDir>/accel/`.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import { hashValue } from '../util/hash.js';
import type { VmConfig } from './qemu-args.js';
import { startVm } from './session.js';

/** How long the calibration boot may take to print the line. */
const CALIBRATION_TIMEOUT_MS = 30_000;
/** How long after the early calibration the refined one may take (it comes ~1 s after, later on a busy host). */
const REFINE_WAIT_MS = 10_000;

/** A rate a calibration may report: anything outside is a misread line, not a TSC. */
const MIN_KHZ = 100_000;
const MAX_KHZ = 20_000_000;

const BOOT_ID = '/proc/sys/kernel/random/boot_id';

/** Bump when the meaning of a cached rate changes. */
const CACHE_FORMAT = 2;

interface CachedRate {
  format: number;
  key: { host: string; bootId: string };
  khz: number;
}

/** The kernel's line after it measured the TSC against the HPET for a second (the most exact). */
const REFINED = /tsc: Refined TSC clocksource calibration: /;

/**
 * The rate in kHz from a kernel's boot lines: the refined calibration when it got
 * that far, else its early one (a few hundred ppm off on a busy host): the
 * `MHz TSC` line when it printed one (the TSC runs at another rate than the CPU),
 * else its `MHz processor` line.
 */
export function tscKhzFromConsole(lines: string[]): number | undefined {
  const rate = (what: string) => {
    // with or without printk's timestamp (PRINTK_TIME)
    const re = new RegExp(`^(?:\\[\\s*\\d+\\.\\d+\\] )?tsc: ${what}\\s*$`);
    for (const l of lines) {
      const m = re.exec(l);
      if (m) return Number(m[1]) * 1000 + Number(m[2]);
    }
    return undefined;
  };
  const mhz = '(\\d{1,5})\\.(\\d{3}) MHz';
  const khz =
    rate(`Refined TSC clocksource calibration: ${mhz}`) ??
    rate(`Detected ${mhz} TSC`) ??
    rate(`Detected ${mhz} processor`);
  return khz !== undefined && khz >= MIN_KHZ && khz <= MAX_KHZ ? khz : undefined;
}

export interface TscRateOptions {
  /** The kernel the calibration boots (the one about to boot on microvm). */
  kernel: string;
  qemu?: string;
  cacheDir: string;
}

/** The host's TSC rate in kHz, from the cache or a calibration boot. */
export async function tcgTscKhz(o: TscRateOptions): Promise<number> {
  const bootId = hostBootId();
  // without a boot id there is nothing to tie a cached rate to: measure each time
  if (!bootId) return calibrate(o);
  const key = { host: hostname(), bootId };
  const file = join(o.cacheDir, 'accel', `tsc-${hashValue(key)}.json`);
  const cached = readCached(file, key);
  if (cached !== undefined) return cached;
  const khz = await calibrate(o);
  const rec: CachedRate = { format: CACHE_FORMAT, key, khz };
  writeFileAtomic(file, `${JSON.stringify(rec, null, 2)}\n`);
  return khz;
}

function hostBootId(): string | undefined {
  try {
    return readFileSync(BOOT_ID, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function readCached(file: string, key: CachedRate['key']): number | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as CachedRate;
    // a torn or foreign file is as good as none: calibrate again
    if (r.format !== CACHE_FORMAT || hashValue(r.key) !== hashValue(key)) return undefined;
    return Number.isInteger(r.khz) && r.khz >= MIN_KHZ && r.khz <= MAX_KHZ ? r.khz : undefined;
  } catch {
    return undefined;
  }
}

async function calibrate(o: TscRateOptions): Promise<number> {
  const lines: string[] = [];
  let done: () => void = () => {};
  const seen = new Promise<void>((r) => {
    done = r;
  });
  let fallback: NodeJS.Timeout | undefined;
  const config: VmConfig = {
    ...(o.qemu ? { qemu: o.qemu } : {}),
    accel: 'tcg',
    machine: 'q35',
    memoryMiB: 128,
    cpus: 1,
    kernel: o.kernel,
    // no initrd, and a root that never comes: the kernel waits for it, running on,
    // until its refined calibration a second after the clocksource is up
    cmdline: 'console=ttyS0 earlyprintk=serial,ttyS0 root=/dev/kjx-calibration rootwait',
    console: { kind: 'stdio' },
  };
  const vm = startVm(config, {
    onLine(line) {
      if (lines.length < 2000) lines.push(line);
      if (REFINED.test(line)) done();
      // a kernel that does not refine (no HPET, an option left out) has said all it will
      else if (!fallback && /tsc: Detected .* MHz/.test(line)) fallback = setTimeout(done, REFINE_WAIT_MS);
    },
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = new Promise<void>((r) => {
      timer = setTimeout(r, CALIBRATION_TIMEOUT_MS);
    });
    await Promise.race([seen, timedOut, vm.exited]);
  } finally {
    clearTimeout(timer);
    clearTimeout(fallback);
    await vm.stop(500);
  }
  const khz = tscKhzFromConsole(lines);
  if (khz === undefined)
    throw new KjxError(
      'VM_START',
      `the microvm machine needs the TSC rate, and a calibration boot of ${o.kernel} on q35 did not print it (no "tsc: Detected ... MHz" line within ${CALIBRATION_TIMEOUT_MS / 1000} s)`,
      {
        hint: 'boot on q35 (leave out --machine microvm), or set tsc_early_khz=<kHz> in kernel.cmdline yourself',
      },
    );
  return khz;
}
