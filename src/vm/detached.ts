/**
 * Detached VMs as Guests (guest.ts). `bootDetached` starts QEMU in the background (its
 * console to a log file, a QMP socket, SSH forwarded from 127.0.0.1), follows the
 * console log with the one console follower (console.ts) until the guest says ready
 * within `--timeout`/`--silence`, records it (registry.ts) and returns the Guest;
 * `attach` gives the Guest of a running one by name. Commands and copies go over SSH
 * (ssh-client.ts) with the host key pinned from the boot. `stopVm` ends one: ACPI
 * power-off through QMP with a deadline, then QMP quit, then SIGKILL.
 *
 * The host keys pinned for SSH come only from `hostkey` markers that carry this
 * boot's nonce (src/guest/markers.ts); the nonce lives in this process only, never
 * in the VM's record.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newNonce } from '../guest/markers.js';
import { KjxError } from '../util/errors.js';
import { tail } from '../util/exec.js';
import { type BootTiming, bootTiming } from './boot-phases.js';
import { followConsole, type TimedMarker, tailConsole } from './console.js';
import { connectQmpOnceUp, forwardedPort } from './forwards.js';
import type { Accel, Guest, Limits, StopResult } from './guest.js';
import { watchLimits } from './limits.js';
import { qemuArgv, type VmConfig } from './qemu-args.js';
import { connectQmp } from './qmp.js';
import {
  type HostKey,
  isQemuPid,
  readRecord,
  removeVm,
  requireVm,
  type VmRecord,
  vmDir,
  writeRecord,
} from './registry.js';
import { sshCopyIn, sshCopyOut, sshRun, sshShell } from './ssh-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface DetachOptions {
  name: string;
  /** The VM without console, QMP, network and nonce (launch.ts makes it from a prepared boot). */
  config: Omit<VmConfig, 'console' | 'qmpSocket' | 'net' | 'nonce'>;
  /** The guest port dropbear listens on (`ssh.port`), forwarded from a free port on 127.0.0.1. */
  sshPort: number;
  /** Isolate the guest from the host and its network (`vm.restrict`; the SSH forward stays). */
  restrict?: boolean;
  spec: string;
  /** How long the boot may take until ready (`--timeout`, `--silence`). */
  limits: Limits;
  buildId?: string;
  identity?: string;
  /**
   * Who starts QEMU (argv, the file for its stderr) and returns its pid; by default
   * kjx, in a session of its own. A cluster's nodes are started by its supervisor.
   */
  spawn?: (argv: string[], stderrFile: string) => Promise<number>;
}

export interface DetachedGuest extends Guest {
  readonly kind: 'detached';
  readonly record: VmRecord;
  /** An interactive login shell on a PTY, wired to this process's terminal. */
  shell(): Promise<number>;
}

/** A host key as the ssh marker gives it: a known type and an unpadded base64 SHA256. */
const HOST_KEY_TYPE = /^(?:ed25519|ecdsa|rsa|dss)$/;
const SHA256_B64 = /^[A-Za-z0-9+/]{43}$/;

/** The host keys in a boot's markers (only well-formed ones count). */
export function hostKeysOf(markers: TimedMarker[]): HostKey[] {
  const keys: HostKey[] = [];
  for (const m of markers) {
    if (m.event !== 'hostkey') continue;
    const type = m.fields.type ?? '';
    const sha256 = m.fields.sha256 ?? '';
    if (!HOST_KEY_TYPE.test(type) || !SHA256_B64.test(sha256)) continue;
    keys.push(m.fields.key ? { type, sha256, key: m.fields.key } : { type, sha256 });
  }
  return keys;
}

/** Start a VM in the background and return it once the guest is ready. */
export async function bootDetached(o: DetachOptions): Promise<DetachedGuest> {
  const dir = vmDir(o.name);
  const old = readRecord(o.name);
  if (old && isQemuPid(old.pid)) {
    throw new KjxError('USAGE', `a VM named "${o.name}" is already running (pid ${old.pid})`, {
      hint: `stop it with \`kjx stop ${o.name}\`, or choose another --name`,
    });
  }
  rmSync(dir, { recursive: true, force: true });
  const rec: VmRecord = {
    name: o.name,
    pid: -1,
    dir,
    qmp: join(dir, 'qmp.sock'),
    consoleLog: join(dir, 'console.log'),
    ports: {},
    kernel: o.config.kernel,
    initrd: o.config.initrd ?? '',
    spec: o.spec,
    accel: o.config.accel,
    startedAt: new Date().toISOString(),
    hostKeys: [],
    ...(o.buildId ? { buildId: o.buildId } : {}),
    ...(o.identity ? { identity: o.identity } : {}),
  };
  writeRecord(rec);
  writeFileSync(join(dir, 'starting'), '');
  writeFileSync(rec.consoleLog, '');
  const nonce = newNonce();
  const argv = qemuArgv({
    ...o.config,
    console: { kind: 'file', path: rec.consoleLog },
    qmpSocket: rec.qmp,
    // port 0: QEMU binds a free port itself, so no other process can take it first
    net: { forwards: [{ host: 0, guest: o.sshPort }], ...(o.restrict ? { restrict: true } : {}) },
    nonce,
  });
  writeFileSync(join(dir, 'argv.json'), `${JSON.stringify(argv, null, 2)}\n`);
  const startedAt = performance.now();
  rec.pid = o.spawn ? await o.spawn(argv, join(dir, 'qemu.log')) : spawnQemu(argv, join(dir, 'qemu.log'));
  writeRecord(rec);
  // the log is QEMU's: the follower reads it as it grows
  const reader = followConsole({ nonce });
  const tailer = tailConsole(rec.consoleLog, reader, {
    alive: () => isQemuPid(rec.pid),
    gone: (what) =>
      new KjxError('VM_START', `QEMU exited before ${what}`, { details: [tail(reader.text(), 20)] }),
  });
  const limits = watchLimits(o.limits, {
    startedAt,
    lastOutputAt: () => reader.lastOutputAt(),
    late: 'the guest did not become ready',
  });
  try {
    const qmp = await connectQmpOnceUp(rec.qmp, () => isQemuPid(rec.pid), 30_000);
    try {
      rec.ports.ssh = await forwardedPort(qmp, o.sshPort);
    } finally {
      qmp.close();
    }
    writeRecord(rec);
    const ready = await Promise.race([
      reader.waitForMarker('ready', 2 ** 31 - 1),
      limits.hit.then((h) => {
        throw new KjxError('VM_TIMEOUT', h.message, { details: [tail(reader.text(), 30)] });
      }),
    ]);
    if (ready.fields.build) rec.buildId = ready.fields.build;
    // the keys the boot printed before it was ready
    const seen = reader.markers();
    rec.hostKeys = hostKeysOf(seen.slice(0, seen.findIndex((m) => m.event === 'ready') + 1));
  } catch (e) {
    try {
      process.kill(rec.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    const qemuErr = existsSync(join(dir, 'qemu.log')) ? tail(readText(join(dir, 'qemu.log'))) : '';
    removeVm(rec);
    if (e instanceof KjxError && qemuErr) e.details.push(`QEMU: ${qemuErr}`);
    throw e;
  } finally {
    limits.cancel();
    tailer.stop();
  }
  rmSync(join(dir, 'starting'), { force: true });
  writeRecord(rec);
  return detachedGuest(rec, { markers: reader.markers(), startedAt });
}

/** QEMU in a session of its own, outliving this process. */
function spawnQemu(argv: string[], stderrFile: string): number {
  const errFd = openSync(stderrFile, 'w');
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', 'ignore', errFd] });
  closeSync(errFd);
  child.unref();
  return child.pid ?? -1;
}

function readText(path: string): string {
  try {
    const fd = openSync(path, 'r');
    const buf = Buffer.alloc(1 << 20);
    const n = readSync(fd, buf, 0, buf.length, 0);
    closeSync(fd);
    return buf.subarray(0, n).toString('utf8');
  } catch {
    return '';
  }
}

/** The Guest of a running detached VM, by name (USAGE listing the live ones otherwise). */
export function attach(name: string, o: { identity?: string; user?: string } = {}): DetachedGuest {
  const rec = requireVm(name);
  return detachedGuest(o.identity ? { ...rec, identity: o.identity } : rec, {
    ...(o.user ? { user: o.user } : {}),
  });
}

function detachedGuest(
  rec: VmRecord,
  o: { markers?: TimedMarker[]; startedAt?: number; user?: string },
): DetachedGuest {
  const user = o.user ?? 'root';
  const markers = o.markers ?? [];
  return {
    kind: 'detached',
    name: rec.name,
    stateDir: rec.dir,
    accel: rec.accel as Accel,
    record: rec,
    run: (cmd, io) => sshRun(rec, cmd, io, user),
    copyIn: (host, guest) => sshCopyIn(rec, host, guest, user),
    copyOut: (guest, host) => sshCopyOut(rec, guest, host, user),
    markers: () => [...markers],
    timing: (): BootTiming =>
      o.startedAt === undefined
        ? { phases: {}, services: [] }
        : bootTiming({ startedAt: o.startedAt, markers }),
    shell: () => sshShell(rec, user),
    stop: () => stopVm(rec, 10),
  };
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (!isQemuPid(pid)) return true;
    await sleep(100);
  }
  return !isQemuPid(pid);
}

/** Stop a detached VM: ACPI power button (guest shuts down cleanly), then quit, then kill. */
export async function stopVm(rec: VmRecord, deadlineS: number): Promise<StopResult> {
  const t0 = performance.now();
  const done = (how: StopResult['how']): StopResult => {
    removeVm(rec);
    return { name: rec.name, how, seconds: (performance.now() - t0) / 1000 };
  };
  if (!isQemuPid(rec.pid)) return done('gone');
  try {
    const qmp = await connectQmp(rec.qmp, 3000);
    try {
      await qmp.execute('system_powerdown');
      if (await waitGone(rec.pid, deadlineS * 1000)) return done('powerdown');
      await qmp.execute('quit').catch(() => {});
      if (await waitGone(rec.pid, 3000)) return done('quit');
    } finally {
      qmp.close();
    }
  } catch {
    // QMP unusable: fall through to the signal
  }
  try {
    process.kill(rec.pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
  await waitGone(rec.pid, 3000);
  return done('kill');
}
