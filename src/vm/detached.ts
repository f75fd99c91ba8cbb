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
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { newNonce } from '../guest/markers.js';
import { reseedElf } from '../guest/reseed-elf.js';
import { restoreFreshScript } from '../guest/run-hook.js';
import { KjxError } from '../util/errors.js';
import { tail } from '../util/exec.js';
import { type BootTiming, bootTiming } from './boot-phases.js';
import { followConsole, type TimedMarker, tailConsole } from './console.js';
import { checkSnapshotFits } from './detached-snapshot.js';
import { connectQmpOnceUp, forwardedPort } from './forwards.js';
import type { Accel, Guest, Limits, StopResult } from './guest.js';
import { watchLimits } from './limits.js';
import { incomingFrom, resumeIncoming } from './migrate.js';
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
import type { SnapshotFileHeader } from './snapshot-file.js';
import { snapshotKey } from './snapshots.js';
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
  /** What QEMU loads (sha256 of kernel, initrd) and which QEMU: with the argv, the machine a snapshot is of. */
  machine?: { qemuVersion: string; artifacts: Record<string, string> };
  /** Start from this snapshot file (opened and checked whole by detached-snapshot.ts) instead of booting. */
  restore?: { path: string; header: SnapshotFileHeader };
  /**
   * Who starts QEMU (argv, the file for its stderr) and returns its pid; by default
   * kjx, in a session of its own. A cluster's nodes are started by its supervisor.
   */
  spawn?: (argv: string[], stderrFile: string) => Promise<number>;
}

export interface DetachedGuest extends Guest {
  readonly kind: 'detached';
  readonly record: VmRecord;
  /** A login shell on this process's stdio: interactive on a PTY from a terminal, a plain script from a pipe. */
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
  const config = { ...o.config };
  if (config.initrd && !config.media) {
    // a copy under the VM's own name, so its argv (the key of `kjx snapshot`) does not name
    // the cache; the file is already decompressed when small (direct-boot.ts); a restored
    // guest has it in memory already, QEMU only needs the file its argv names
    const copy = join(dir, 'initrd');
    // copied by the kernel, not through our memory: an image with container runtimes is hundreds of MB
    if (o.restore) writeFileSync(copy, '');
    else copyFileSync(config.initrd, copy);
    chmodSync(copy, 0o600);
    config.initrd = copy;
  }
  const nonce = newNonce();
  const vmConfig = (n: string): VmConfig => ({
    ...config,
    console: { kind: 'file', path: rec.consoleLog },
    qmpSocket: rec.qmp,
    // port 0: QEMU binds a free port itself, so no other process can take it first
    net: { forwards: [{ host: 0, guest: o.sshPort }], ...(o.restrict ? { restrict: true } : {}) },
    nonce: n,
  });
  if (o.machine) {
    rec.machine = {
      key: snapshotKey({
        argv: qemuArgv(vmConfig(KEY_NONCE)).map((a) => a.split(dir).join('<vm>')),
        artifacts: o.machine.artifacts,
        qemuVersion: o.machine.qemuVersion,
        accel: o.config.accel,
      }),
      qemuVersion: o.machine.qemuVersion,
      accel: o.config.accel,
      artifacts: o.machine.artifacts,
      sshPort: o.sshPort,
    };
  }
  if (o.restore) {
    if (!rec.machine) throw new KjxError('INTERNAL', 'a restore needs the machine identity');
    try {
      checkSnapshotFits(o.restore.path, o.restore.header, rec.machine);
    } catch (e) {
      removeVm(rec);
      throw e;
    }
    rec.restoredFrom = o.restore.path;
  }
  const argv = qemuArgv({
    ...vmConfig(nonce),
    ...(o.restore ? { incoming: incomingFrom(o.restore.path) } : {}),
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
    if (o.restore) {
      await restoreReady(rec, o.restore.header, limits.hit);
    } else {
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
    }
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

/** A nonce that stands for any in a machine's key. */
const KEY_NONCE = '0'.repeat(32);

/**
 * A VM restored from a snapshot is ready on arrival: once QEMU has loaded the stream,
 * let it run (it was saved paused), pin the host keys its boot pinned, and give it
 * fresh randomness and the host's clock over SSH before anyone else logs in.
 */
async function restoreReady(
  rec: VmRecord,
  h: SnapshotFileHeader,
  limitHit: Promise<{ message: string }>,
): Promise<void> {
  rec.hostKeys = h.hostKeys;
  if (h.buildId) rec.buildId = h.buildId;
  const work = (async () => {
    const qmp = await connectQmp(rec.qmp, 5000);
    try {
      await resumeIncoming(qmp, () => isQemuPid(rec.pid));
    } finally {
      qmp.close();
    }
    const err: Buffer[] = [];
    const r = await sshRun(
      rec,
      { argv: ['/bin/sh', '-c', restoreFreshScript({ seed: randomBytes(32), epoch: Date.now() / 1000 })] },
      {
        stdin: Readable.from([reseedElf()]),
        stdout: new PassThrough().resume(),
        stderr: new PassThrough().on('data', (b: Buffer) => err.push(b)),
      },
    );
    const why = Buffer.concat(err).toString('utf8').trim();
    if (r.outcome !== 'exited' || r.status !== 0)
      throw new KjxError('VM_START', 'the restored guest could not take a fresh clock and random seed', {
        details: [why, r.message ?? ''].filter(Boolean),
      });
  })();
  await Promise.race([
    work,
    limitHit.then((hit) => {
      throw new KjxError('VM_TIMEOUT', hit.message);
    }),
  ]);
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
