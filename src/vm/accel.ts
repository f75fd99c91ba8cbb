/**
 * Choosing the accelerator: KVM where it runs guests, TCG (QEMU's emulator)
 * otherwise.
 *
 * A `/dev/kvm` that opens is not proof: under nested virtualization without working
 * nested KVM, QEMU opens it, starts, and the guest never executes an instruction.
 * So `auto` boots the kernel once under KVM, without an initrd, for a few seconds at
 * most, and waits for the kernel's first console line (`earlyprintk` makes it
 * come within milliseconds of the kernel starting). No line: KVM does not run
 * guests here, and TCG it is. The probe QEMU is always ended.
 *
 * The verdict is cached per host, kernel and QEMU (host name and kernel release,
 * the guest kernel's sha256, the QEMU binary's path and version, whether the KVM
 * device exists), one small JSON file each under `<cacheDir>/accel/`, written
 * atomically, so the probe runs once.
 */
import { accessSync, closeSync, constants, openSync, readFileSync, statSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { isKjxError, KjxError } from '../util/errors.js';
import { run, tail } from '../util/exec.js';
import { hashValue } from '../util/hash.js';
import { sha256File } from '../util/hash-file.js';
import type { VmConfig } from './qemu-args.js';
import { startVm } from './session.js';

export type AccelRequest = 'auto' | 'kvm' | 'tcg';
export type Accel = 'kvm' | 'tcg';

export interface AccelChoice {
  accel: Accel;
  /** Why, in words for `--timing` and logs. */
  reason: string;
  /** The verdict came from the cache (no probe ran). */
  cached: boolean;
}

export interface ChooseAccelOptions {
  /** The guest kernel image (bzImage) the probe boots. */
  kernel: string;
  /** Its sha256 when the caller has it (the build record), else it is hashed here. */
  kernelSha256?: string;
  /** QEMU binary, a name looked up on PATH or a path (default qemu-system-x86_64). */
  qemu?: string;
  /** kjx's cache root; verdicts go to `<cacheDir>/accel/`. */
  cacheDir: string;
  /** How long the probe waits for the kernel's first line (default 3000 ms). */
  probeTimeoutMs?: number;
  /** The KVM device (default /dev/kvm; tests point it elsewhere). */
  kvmDevice?: string;
}

export const DEFAULT_PROBE_TIMEOUT_MS = 3000;
const DEFAULT_QEMU = 'qemu-system-x86_64';
const DEFAULT_KVM_DEVICE = '/dev/kvm';

/**
 * The probe's command line: the early serial console prints the kernel's first
 * lines as soon as it parses its parameters; without an initrd the kernel panics
 * when it finds no root, and `panic=-1` with `-no-reboot` ends QEMU.
 */
export const PROBE_CMDLINE = 'console=ttyS0 earlyprintk=serial,ttyS0 panic=-1';

/** The kernel's banner, or any printk line with its timestamp. */
export const KERNEL_OUTPUT = /Linux version |^\[\s*\d+\.\d+\] /;

/** Bump when the meaning of a cached verdict changes. */
const CACHE_FORMAT = 1;

interface CachedVerdict {
  format: number;
  key: VerdictKey;
  accel: Accel;
  reason: string;
  probedAt: string;
}

interface VerdictKey {
  host: string;
  hostKernel: string;
  kernelSha256: string;
  qemuPath: string;
  qemuVersion: string;
  kvmDevice: string;
  kvmPresent: boolean;
}

/**
 * `tcg` as asked; `auto`: KVM when the device opens read-write and a bounded test
 * boot shows the guest running, TCG otherwise; `kvm`: the same checks, but a
 * KjxError (VM_START, hint `--accel tcg`) when KVM cannot run guests here.
 */
export async function chooseAccel(requested: AccelRequest, opts: ChooseAccelOptions): Promise<AccelChoice> {
  if (requested === 'tcg') return { accel: 'tcg', reason: 'requested with --accel tcg', cached: false };
  if (requested !== 'auto' && requested !== 'kvm') {
    throw new KjxError('USAGE', `accelerator "${String(requested)}": expected auto, kvm or tcg`);
  }
  const device = opts.kvmDevice ?? DEFAULT_KVM_DEVICE;
  const access = kvmAccess(device);
  if (!access.ok) {
    if (requested === 'kvm') throw kvmUnavailable(access.why);
    return { accel: 'tcg', reason: `${access.why}; using TCG`, cached: false };
  }

  const qemuPath = findExecutable(opts.qemu ?? DEFAULT_QEMU);
  const key: VerdictKey = {
    host: hostname(),
    hostKernel: release(),
    kernelSha256: opts.kernelSha256 ?? kernelHash(opts.kernel),
    qemuPath,
    // asking QEMU is a process start on every boot of a host with /dev/kvm (13 ms quiet, 60-130 ms busy)
    qemuVersion: await qemuVersionCached(opts.cacheDir, qemuPath),
    kvmDevice: device,
    kvmPresent: true,
  };
  const file = join(opts.cacheDir, 'accel', `${hashValue(key)}.json`);
  let verdict = readVerdict(file, key);
  let cached = true;
  if (!verdict) {
    cached = false;
    const p = await probeKvm(qemuPath, opts.kernel, opts.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS);
    verdict = {
      format: CACHE_FORMAT,
      key,
      accel: p.ok ? 'kvm' : 'tcg',
      reason: p.reason,
      probedAt: new Date().toISOString(),
    };
    writeFileAtomic(file, `${JSON.stringify(verdict, null, 2)}\n`);
  }
  if (requested === 'kvm' && verdict.accel !== 'kvm') throw kvmUnavailable(verdict.reason);
  const reason = verdict.accel === 'kvm' ? verdict.reason : `${verdict.reason}; using TCG`;
  return { accel: verdict.accel, reason, cached };
}

function kvmUnavailable(why: string): KjxError {
  return new KjxError('VM_START', `--accel kvm: KVM cannot run guests on this host: ${why}`, {
    hint: 'use --accel tcg (or --accel auto, which falls back to TCG by itself)',
  });
}

/** Whether the KVM device exists and opens read-write, as QEMU needs it. */
export function kvmAccess(device: string): { ok: true } | { ok: false; why: string } {
  try {
    statSync(device);
  } catch {
    return { ok: false, why: `${device} does not exist (no KVM on this host)` };
  }
  try {
    // opening /dev/kvm creates nothing; it is exactly what QEMU does first
    closeSync(openSync(device, constants.O_RDWR));
    return { ok: true };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    const uid = process.getuid?.();
    return {
      ok: false,
      why: `${device} is not readable and writable${uid === undefined ? '' : ` by uid ${uid}`} (${code}; is the user in the kvm group?)`,
    };
  }
}

/** A command name looked up on PATH, or a path made absolute; HOST_TOOL_MISSING if neither is executable. */
export function findExecutable(name: string, path = process.env.PATH ?? ''): string {
  const candidates = name.includes('/')
    ? [resolve(name)]
    : path
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      if (statSync(c).isFile()) return c;
    } catch {
      // not this one
    }
  }
  throw new KjxError('HOST_TOOL_MISSING', `${name} is not installed (QEMU is needed to boot images)`, {
    hint: 'install it with `apt-get install qemu-system-x86` (kjx doctor --install does it)',
  });
}

function kernelHash(kernel: string): string {
  try {
    return sha256File(kernel);
  } catch (e) {
    throw new KjxError('INPUT_NOT_FOUND', `the kernel image ${kernel} cannot be read`, {
      cause: e,
      hint: 'run `kjx build` first',
    });
  }
}

/**
 * QEMU's `--version` line, remembered per binary (path, inode, size, mtime) under
 * `<cacheDir>/accel/`, so a run that needs it (a snapshot's key) spawns no QEMU.
 */
export async function qemuVersionCached(cacheDir: string, qemu = DEFAULT_QEMU): Promise<string> {
  const path = findExecutable(qemu);
  const st = statSync(path);
  const id = { path, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
  const file = join(cacheDir, 'accel', `version-${hashValue(id)}.txt`);
  try {
    const v = readFileSync(file, 'utf8').trim();
    if (v) return v;
  } catch {
    // not asked yet
  }
  const v = await qemuVersion(path);
  writeFileAtomic(file, `${v}\n`);
  return v;
}

/** QEMU's first `--version` line: a QEMU upgrade can change whether KVM guests run. */
async function qemuVersion(qemu: string): Promise<string> {
  const r = await run('asking QEMU for its version', qemu, ['--version'], { timeoutMs: 10_000 });
  return r.stdout.split('\n')[0]!.trim();
}

function readVerdict(file: string, key: VerdictKey): CachedVerdict | undefined {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as CachedVerdict;
    // a torn or foreign file is as good as none: probe again
    if (v.format !== CACHE_FORMAT || hashValue(v.key) !== hashValue(key)) return undefined;
    if (v.accel !== 'kvm' && v.accel !== 'tcg') return undefined;
    if (typeof v.reason !== 'string') return undefined;
    return v;
  } catch {
    return undefined;
  }
}

/** Boot the kernel under KVM until its first console line, for at most `timeoutMs`. */
async function probeKvm(
  qemu: string,
  kernel: string,
  timeoutMs: number,
): Promise<{ ok: boolean; reason: string }> {
  const config: VmConfig = {
    qemu,
    accel: 'kvm',
    memoryMiB: 128,
    cpus: 1,
    kernel,
    cmdline: PROBE_CMDLINE,
    console: { kind: 'stdio' },
  };
  const t0 = performance.now();
  const vm = startVm(config);
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = new Promise<{ kind: 'timeout' }>((r) => {
      timer = setTimeout(() => r({ kind: 'timeout' }), timeoutMs);
    });
    // our own timer decides "no output"; the session's longer one never fires first
    const seen = vm.waitForLine(KERNEL_OUTPUT, timeoutMs + 60_000).then(
      () => ({ kind: 'line' as const }),
      (e: unknown) => ({ kind: 'error' as const, e }),
    );
    const r = await Promise.race([timedOut, seen]);
    const ms = Math.round(performance.now() - t0);
    if (r.kind === 'line')
      return { ok: true, reason: `a KVM test boot printed its first kernel line after ${ms} ms` };
    if (r.kind === 'timeout') {
      return {
        ok: false,
        reason: `a KVM test boot printed no kernel line within ${timeoutMs} ms (KVM opens but does not run guests, as under nested virtualization without working nested KVM)`,
      };
    }
    // a panic line is kernel output too: the guest ran
    if (isKjxError(r.e) && r.e.code === 'GUEST_PANIC') {
      return { ok: true, reason: `a KVM test boot reached the kernel after ${ms} ms` };
    }
    const err = vm.stderr().trim();
    const what = err ? tail(err, 3).replace(/\n/g, ' | ') : r.e instanceof Error ? r.e.message : String(r.e);
    return { ok: false, reason: `QEMU with KVM failed to start: ${what}` };
  } finally {
    clearTimeout(timer);
    await vm.stop(500);
  }
}
