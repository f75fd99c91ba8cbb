/**
 * Launching VMs from a prepared boot (prepare.ts): the one place that turns a
 * `Prepared` and what is particular to one VM (its state directory, console, ports,
 * network) into a `VmConfig`, and starts it as a Guest (guest.ts):
 *
 * - `launch(p)`: an ephemeral Guest; QEMU starts when its one command runs;
 * - `launch(p, { detached })`: a VM in the background, returned once it is ready;
 * - `launchConsole(p)`: QEMU with the console on our terminal (`kjx boot`).
 *
 * Nothing here is global: every launch has its own state directory, nonce and
 * sockets, so one process can start several at once (a loop over `launch`), which is
 * what a cluster of nodes on one network will do. A VM restored from a snapshot is a
 * launch whose config adds QEMU's `-incoming` and whose guest is ready on arrival
 * (docs/ARCHITECTURE.md, "Running VMs").
 */
import { basename, join } from 'node:path';
import { KjxError, type WarnFn } from '../util/errors.js';
import type { DetachedGuest, DetachOptions } from './detached.js';
import type { EphemeralGuest, EphemeralSnapshots } from './ephemeral.js';
import { connectQmpOnceUp, forwardedPort } from './forwards.js';
import type { Limits } from './guest.js';
import type { Prepared } from './prepare.js';
import type { VdeLan, VmConfig } from './qemu-args.js';
import type { Session } from './session.js';

/** The parts of a VmConfig every VM of a prepared boot shares: machine and boot target. */
export type BaseConfig = Omit<VmConfig, 'console'>;

export function baseConfig(p: Prepared): BaseConfig {
  const machine = {
    accel: p.accel.accel,
    memoryMiB: p.memoryMiB,
    cpus: p.cpus,
    // q35 is the argv builder's default: its argv (and so its snapshot keys) stay as they were
    ...(p.machine === 'q35' ? {} : { machine: p.machine }),
  };
  const b = p.boot;
  if (b.kind === 'media')
    return { ...machine, kernel: '', cmdline: '', media: b.media, firmware: b.firmware };
  return {
    ...machine,
    kernel: b.kernel,
    initrd: b.initrd,
    cmdline: b.cmdline,
    ...(b.firmware ? { firmware: b.firmware } : {}),
  };
}

export interface LaunchOptions {
  /** This VM's directory (ephemeral: a fresh one under `<state>/runs` by default). */
  stateDir?: string;
  /**
   * Ephemeral: restore a snapshot at ready when there is one, save one after a boot
   * (both by default; `--cold` and `--no-save` turn them off); `warn` hears of
   * snapshots refused or not saved. Without it, no snapshot is used.
   */
  snapshots?: { restore: boolean; save: boolean; warn: WarnFn };
  /**
   * Ephemeral: checks whose preparations (a check image to load) run before ready,
   * so a snapshot saved at ready holds them (`kjx test`; src/guest/checks.ts).
   */
  prepare?: string[];
}

export interface DetachedLaunch {
  /** Run in the background under this name (`<state>/vms/<name>`), until ready within the limits. */
  detached: { name: string } & Limits & ClusterNodeParts;
  /** Start from this snapshot file (`kjx boot --restore`) instead of booting. */
  restore?: string;
}

/** What a cluster node adds to a detached VM (src/cluster/): its LAN NIC, per-boot files, its starter. */
export interface ClusterNodeParts {
  lan?: VdeLan;
  fwCfg?: VmConfig['fwCfg'];
  spawn?: DetachOptions['spawn'];
}

export async function launch(p: Prepared, o: DetachedLaunch): Promise<DetachedGuest>;
export async function launch(p: Prepared, o?: LaunchOptions): Promise<EphemeralGuest>;
export async function launch(
  p: Prepared,
  o: LaunchOptions | DetachedLaunch = {},
): Promise<EphemeralGuest | DetachedGuest> {
  if ('detached' in o) {
    const { bootDetached } = await import('./detached.js');
    const { name, lan, fwCfg, spawn, ...limits } = o.detached;
    const restore = o.restore
      ? await (await import('./detached-snapshot.js')).openSnapshotFile(o.restore)
      : undefined;
    const machine = await detachedMachine(p);
    if (restore && !machine)
      throw new KjxError(
        'USAGE',
        `snapshot ${o.restore}: only a direct boot (kernel and initramfs) can be restored`,
        {
          hint: 'restore without --artifact/--firmware choosing a boot medium',
        },
      );
    return bootDetached({
      ...(machine ? { machine } : {}),
      ...(restore ? { restore } : {}),
      name,
      config: { ...baseConfig(p), ...(lan ? { lan } : {}), ...(fwCfg ? { fwCfg } : {}) },
      ...(spawn ? { spawn } : {}),
      sshPort: p.sshPort,
      restrict: p.restrict,
      spec: p.image.specPath,
      limits,
      buildId: p.image.buildId,
      ...(p.identity ? { identity: p.identity } : {}),
    });
  }
  const { ephemeralGuest } = await import('./ephemeral.js');
  const stateDir = o.stateDir ?? (await import('./state.js')).newRunDir();
  const config = baseConfig(p);
  const snapshot =
    o.snapshots && (o.snapshots.restore || o.snapshots.save) && p.boot.kind === 'direct'
      ? await ephemeralSnapshots(p, config, o.snapshots)
      : undefined;
  return ephemeralGuest({
    config,
    imagePaths: new Set(p.image.manifest.files.map((f) => f.path)),
    stateDir,
    name: basename(stateDir),
    ...(snapshot ? { snapshot } : {}),
    ...(o.prepare?.length ? { prepare: o.prepare } : {}),
  });
}

/**
 * Which QEMU and artifacts a detached VM runs, so `kjx snapshot` can say what it saved
 * (direct boots only: a medium's overlay is not part of a snapshot).
 */
async function detachedMachine(
  p: Prepared,
): Promise<{ qemuVersion: string; artifacts: Record<string, string> } | undefined> {
  const b = p.boot;
  if (b.kind !== 'direct') return undefined;
  const { qemuVersionCached } = await import('./accel.js');
  const { openCache } = await import('../sources/cache.js');
  return {
    qemuVersion: await qemuVersionCached(openCache().root, baseConfig(p).qemu),
    artifacts: await bootArtifacts(b),
  };
}

/**
 * What QEMU loads, by content, for a snapshot's key: the bzImage the kernel comes from
 * (the PVH vmlinux QEMU loads is unpacked from it, direct-boot.ts; argv says which),
 * and the initramfs. Taken from the boot, never from the image: a `--kernel` boot
 * loads another kernel and another initramfs than the image's, and a snapshot saved
 * with one must never be restored for the other.
 */
export async function bootArtifacts(
  b: Extract<Prepared['boot'], { kind: 'direct' }>,
): Promise<Record<string, string>> {
  const { sha256File } = await import('../util/hash-file.js');
  return {
    kernel: b.kernelSha256 ?? sha256File(b.kernel),
    pvh: String(b.pvh),
    initrd: b.initrdSha256 ?? sha256File(b.initrd),
  };
}

/** What an ephemeral launch needs to find and save snapshots (snapshots.ts). */
async function ephemeralSnapshots(
  p: Prepared,
  config: BaseConfig,
  o: NonNullable<LaunchOptions['snapshots']>,
): Promise<EphemeralSnapshots | undefined> {
  const { findExecutable, qemuVersionCached } = await import('./accel.js');
  try {
    findExecutable('zstd');
  } catch {
    o.warn({ code: 'SNAPSHOT_UNAVAILABLE', message: 'zstd is not installed: no snapshot is used or saved' });
    return undefined;
  }
  const { openCache } = await import('../sources/cache.js');
  const { openSnapshots } = await import('./snapshots.js');
  const cacheDir = openCache().root;
  const b = p.boot;
  if (b.kind !== 'direct') return undefined;
  return {
    store: openSnapshots(cacheDir),
    restore: o.restore,
    save: o.save,
    qemuVersion: await qemuVersionCached(cacheDir, config.qemu),
    artifacts: await bootArtifacts(b),
    warn: o.warn,
  };
}

/** A VM whose serial console is the caller's to show and type into, with SSH forwarded. */
export interface ConsoleVm {
  session: Session;
  /** The host port on 127.0.0.1 forwarded to the guest's `ssh.port`. */
  sshPort: number;
  stateDir: string;
}

/**
 * Start QEMU with its console on a pipe (QEMU's mux: Ctrl-A X quits, Ctrl-A C the
 * monitor) and SSH forwarded from a port QEMU binds itself (QMP tells which).
 */
export async function launchConsole(p: Prepared, o: LaunchOptions = {}): Promise<ConsoleVm> {
  const { startVm } = await import('./session.js');
  const { isQemuPid } = await import('./registry.js');
  const stateDir = o.stateDir ?? (await import('./state.js')).newRunDir();
  const qmpSocket = join(stateDir, 'qmp.sock');
  const session = startVm(
    {
      ...baseConfig(p),
      console: { kind: 'stdio', mux: true },
      qmpSocket,
      net: { forwards: [{ host: 0, guest: p.sshPort }], ...(p.restrict ? { restrict: true } : {}) },
    },
    { consoleLog: join(stateDir, 'console.log') },
  );
  try {
    const qmp = await connectQmpOnceUp(qmpSocket, () => isQemuPid(session.pid), 30_000);
    try {
      return { session, sshPort: await forwardedPort(qmp, p.sshPort), stateDir };
    } finally {
      qmp.close();
    }
  } catch (e) {
    await session.stop();
    throw e;
  }
}
