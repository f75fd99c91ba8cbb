/**
 * An ephemeral VM as a Guest (guest.ts): started for one command, booted or restored
 * from a snapshot taken at ready (snapshots.ts, docs/boot-time.md). Either way the
 * run hook (payload.ts) waits at ready for the run request on the virtio-serial port
 * `kjx.cmd`: the command with the files to copy in, this run's nonce, clock and seed
 * (run-hook.ts). A boot that may save stops at that point, saves the VM over QMP
 * (`migrate` to a compressed file), resumes and only then gets its request, so a
 * cold run and a restored one run the command the same way. The command's stdout and
 * stderr stream over the ports `kjx.stdout` and `kjx.stderr` (not the console), and
 * files to copy out come over `kjx.files` after it (src/guest/copy-out.ts). Three
 * signals are watched together: QEMU exiting, guest markers (and panic lines) on the
 * console, and the `--timeout`/`--silence` limits. Whatever happens, QEMU is gone
 * when `run` returns.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  COPY_OUT_LIST,
  COPY_OUT_PATH,
  type CopiedFile,
  copyOutList,
  copyOutParser,
  copyOutScript,
  FILES_PORT,
} from '../guest/copy-out.js';
import { RUN_FW_CFG_NAME } from '../guest/layout.js';
import { exitStatus } from '../guest/markers.js';
import { CMD_PORT, runRequest, STDERR_PORT, STDOUT_PORT } from '../guest/run-hook.js';
import { tempNameFor } from '../util/atomic.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import { tail } from '../util/exec.js';
import { sha256 } from '../util/hash.js';
import { type BootTiming, bootTiming, type ServiceEvent, serviceEvents } from './boot-phases.js';
import type { Accel, Guest, GuestCommand, GuestRunResult, Outcome, RunIo, StopResult } from './guest.js';
import { watchLimits } from './limits.js';
import { incomingFrom, migrateToFile, resumeIncoming } from './migrate.js';
import { hookPayload, type Mount, type PayloadFile, runArchive } from './payload.js';
import { qemuArgv, type VmConfig } from './qemu-args.js';
import { connectQmp, type QmpClient } from './qmp.js';
import { type Session, startVm } from './session.js';
import {
  adoptSnapshot,
  findSnapshot,
  removeSnapshot,
  type SnapshotStore,
  snapshotKey,
  tempStreamPath,
} from './snapshots.js';

/** What an ephemeral VM boots, from a prepared boot (launch.ts). */
export interface EphemeralSpec {
  /** The VM without console and ports; `initrd` is the image's (the payload is appended to a copy). */
  config: Omit<VmConfig, 'console'>;
  /** Paths the image has (its manifest): the payload leaves those directories out. */
  imagePaths: Set<string>;
  stateDir: string;
  /** The run directory's name. */
  name: string;
  /** Start from a snapshot at ready when there is one, save one after a boot (direct boots only). */
  snapshot?: EphemeralSnapshots;
  /** Checks whose preparations the run hook runs before ready (`kjx test`; checks.ts). */
  prepare?: string[];
}

/** How an ephemeral VM uses snapshots (snapshots.ts). */
export interface EphemeralSnapshots {
  store: SnapshotStore;
  /** Restore a saved one when there is one (`--cold`: false). */
  restore: boolean;
  /** Save one after a boot (`--no-save`: false). */
  save: boolean;
  /** QEMU's `--version` line (part of the key). */
  qemuVersion: string;
  /** sha256 of the image's artifacts (part of the key). */
  artifacts: Record<string, string>;
  /** Receives refused snapshots and failed saves (the run boots, or goes on, instead). */
  warn: WarnFn;
}

/** The virtio-serial ports of every ephemeral VM, in this order: a snapshot needs the same devices. */
const PORTS = [STDOUT_PORT, STDERR_PORT, FILES_PORT, CMD_PORT] as const;
const CMD_PORT_ID = `vport${PORTS.indexOf(CMD_PORT)}`;

/** Kernel parameters of every ephemeral direct boot that saves or restores a snapshot: one machine either way. */
export const SNAPSHOT_CMDLINE = 'init_on_free=1';

/** A nonce that stands for any in a snapshot's key. */
const KEY_NONCE = '0'.repeat(32);

export interface EphemeralGuest extends Guest {
  readonly kind: 'ephemeral';
}

/** A wait that never keeps the process alive by itself. */
function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Listen on a unix socket for QEMU's virtio-serial chardev and hand on what arrives. */
function portServer(
  path: string,
  sink: (b: Buffer) => void,
  onConnect?: (sock: Socket) => void,
): { server: Server; closed: Promise<void> } {
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });
  const server = createServer((sock: Socket) => {
    onConnect?.(sock);
    sock.on('data', sink);
    sock.on('close', () => resolveClosed());
    sock.on('error', () => resolveClosed());
  });
  server.listen(path);
  return { server, closed };
}

/** The longest a marker wait may be: setTimeout's maximum. */
const FOREVER_MS = 2 ** 31 - 1;

export function ephemeralGuest(e: EphemeralSpec): EphemeralGuest {
  const accel: Accel = e.config.accel;
  const mounts: Mount[] = [];
  const outs: { guest: string; host: string; settle: (r: CopiedFile) => void }[] = [];
  let state: 'new' | 'running' | 'done' = 'new';
  let session: Session | undefined;
  let exitedAt: number | undefined;
  let restoredFrom: { services: ServiceEvent[] } | undefined;
  /** When a restored VM was running again (performance.now()). */
  let resumedAt: number | undefined;

  const before = (what: string): void => {
    if (state !== 'new')
      throw new KjxError('USAGE', `${what}: an ephemeral VM takes its files with its one command`, {
        hint: 'give the files before the command runs, or boot a detached VM (kjx boot --detach)',
      });
  };

  const guest: EphemeralGuest = {
    kind: 'ephemeral',
    name: e.name,
    stateDir: e.stateDir,
    accel,
    async copyIn(host, guestPath) {
      before(`copy ${host} in`);
      mounts.push({ host, guest: guestPath });
    },
    copyOut(guestPath, host) {
      before(`copy ${guestPath} out`);
      copyOutList([guestPath]);
      return new Promise<void>((resolve, reject) => {
        outs.push({
          guest: guestPath,
          host,
          settle: (r) =>
            r.ok
              ? resolve()
              : reject(
                  new KjxError('GUEST_COPY', `copying ${guestPath} out of the guest failed: ${r.why}`, {
                    hint: `nothing was written to ${host}`,
                  }),
                ),
        });
      });
    },
    markers: () => session?.markers() ?? [],
    timing: (): BootTiming => {
      if (!session) return { phases: {}, services: [] };
      const t = bootTiming({
        startedAt: session.startedAt,
        markers: session.markers(),
        exitedAt: exitedAt ?? performance.now(),
      });
      if (!restoredFrom) return t;
      // a restored VM did not boot: no boot phases; its services are those of the boot it was saved from
      const { commandDone, qemuExit } = t.phases;
      const restored = resumedAt !== undefined ? (resumedAt - session.startedAt) / 1000 : undefined;
      return {
        phases: {
          ...(restored !== undefined ? { restored } : {}),
          ...(commandDone !== undefined ? { commandDone } : {}),
          ...(qemuExit !== undefined ? { qemuExit } : {}),
        },
        services: [...restoredFrom.services, ...t.services],
      };
    },
    async run(cmd, io) {
      if (state !== 'new')
        throw new KjxError('USAGE', 'an ephemeral VM runs one command', {
          hint: 'launch another, or boot a detached VM (kjx boot --detach) for several',
        });
      if (io.stdin)
        throw new KjxError('USAGE', "an ephemeral VM's command reads no stdin (it gets /dev/null)");
      state = 'running';
      try {
        return await runOnce(cmd, io);
      } finally {
        state = 'done';
        // copies the run did not deliver fail now, rather than never
        for (const o of outs.splice(0)) o.settle({ ok: false, why: 'the command did not end normally' });
      }
    },
    async stop(): Promise<StopResult> {
      const t0 = performance.now();
      const alive = session !== undefined && exitedAt === undefined;
      await session?.stop(1000);
      if (state === 'new') {
        state = 'done';
        for (const o of outs.splice(0))
          o.settle({ ok: false, why: 'the VM was stopped before its command ran' });
      }
      return { name: e.name, how: alive ? 'kill' : 'gone', seconds: (performance.now() - t0) / 1000 };
    },
  };

  async function runOnce(cmd: GuestCommand, io: RunIo): Promise<GuestRunResult> {
    const extra: PayloadFile[] = [];
    let command = { argv: cmd.argv, env: cmd.env ?? {}, cwd: cmd.cwd ?? '/' };
    if (outs.length > 0) {
      extra.push({ path: COPY_OUT_PATH, data: copyOutScript(), mode: 0o755 });
      extra.push({ path: COPY_OUT_LIST, data: copyOutList(outs.map((o) => o.guest)), mode: 0o644 });
      command = { ...command, argv: ['/bin/sh', COPY_OUT_PATH, ...cmd.argv] };
    }
    const archive = runArchive(command, mounts, e.imagePaths, extra);
    const hook = hookPayload(e.imagePaths, e.prepare);
    const initrd = join(e.stateDir, 'initrd');
    const fwCfgFile = join(e.stateDir, 'run.cpio');
    const c = e.config;
    // the hook goes over fw_cfg, so QEMU loads the initramfs as prepared (decompressed once,
    // in the cache: direct-boot.ts) instead of a per-run copy with the hook appended
    const boot: Partial<VmConfig> = {
      ...(c.media ? { media: { ...c.media, snapshot: true } } : {}),
      fwCfg: [...(c.fwCfg ?? []), { name: RUN_FW_CFG_NAME, file: fwCfgFile }],
    };
    // 0600: the payload may hold copied-in files
    writeFileSync(fwCfgFile, hook, { mode: 0o600 });
    // a restored guest unpacked its initramfs before the save: QEMU needs a file to load,
    // not the bytes (they reach no guest memory the stream does not overwrite), and an
    // empty one spares it reading hundreds of MB of container runtimes
    const restoreInitrd = (): Partial<VmConfig> => {
      if (c.media) return {};
      writeFileSync(initrd, '', { mode: 0o600 });
      return { initrd };
    };
    const plain: VmConfig = {
      ...c,
      ...boot,
      console: { kind: 'stdio' },
      qmpSocket: join(e.stateDir, 'qmp.sock'),
      ports: PORTS.map((name) => ({ name, socket: portSocket(name) })),
    };
    // snapshots of direct boots only: a medium's overlay (snapshot=on) is not part of one
    const snap = e.snapshot && !c.media ? e.snapshot : undefined;
    // freed pages zeroed, so a snapshot stores them as a flag each (docs/boot-time.md);
    // a boot that saves none does not pay for it: zeroing 512 MiB at boot is ~1 s under TCG
    const saving: VmConfig = snap ? { ...plain, cmdline: `${c.cmdline} ${SNAPSHOT_CMDLINE}` } : plain;
    // where the initramfs lives (the cache's cpio, or the image itself when it stays compressed)
    // is no part of the machine: its content is, as an artifact
    const keyArg = (a: string) => {
      const run = a.split(e.stateDir).join('<run>');
      return c.initrd && !c.media ? run.split(c.initrd).join('<initrd>') : run;
    };
    const key = snap
      ? snapshotKey({
          argv: qemuArgv({ ...saving, nonce: KEY_NONCE }).map(keyArg),
          artifacts: { ...snap.artifacts, hook: sha256(hook) },
          qemuVersion: snap.qemuVersion,
          accel,
        })
      : undefined;
    const want = snap ? { qemuVersion: snap.qemuVersion, accel } : undefined;
    try {
      return await startEither(saving, plain, archive, io, restoreInitrd, snap, key, want);
    } finally {
      // the console log and argv stay for a look afterwards, the hook and a restore's empty initramfs do not
      rmSync(initrd, { force: true });
      rmSync(fwCfgFile, { force: true });
    }
  }

  /** Restore when there is a snapshot and QEMU loads it, else boot (and save when asked). */
  async function startEither(
    saving: VmConfig,
    plain: VmConfig,
    archive: Buffer,
    io: RunIo,
    restoreInitrd: () => Partial<VmConfig>,
    snap: EphemeralSnapshots | undefined,
    key: string | undefined,
    want: { qemuVersion: string; accel: Accel } | undefined,
  ): Promise<GuestRunResult> {
    const found = snap?.restore && key && want ? findSnapshot(snap.store, key, want, snap.warn) : undefined;
    if (found) {
      restoredFrom = { services: found.record.services };
      const r = await startOnce({ ...saving, ...restoreInitrd() }, archive, io, {
        restore: found.stream,
        key: key!,
      });
      // a stream QEMU cannot load (another build of the same QEMU version, a bug) is dropped, and the run boots
      if (!r.restoreFailed) return r.result;
      snap!.warn({
        code: 'SNAPSHOT_REFUSED',
        message: `QEMU could not load snapshot ${key!.slice(0, 12)} (${r.restoreFailed}); booting instead`,
      });
      removeSnapshot(snap!.store, key!);
      restoredFrom = undefined;
      resumedAt = undefined;
    }
    const save = snap?.save && key && want ? { snap: snap!, key, ...want } : undefined;
    return (
      await startOnce(save ? saving : plain, archive, io, {
        ...(key ? { key } : {}),
        ...(save ? { save } : {}),
      })
    ).result;
  }

  function portSocket(name: string): string {
    return join(e.stateDir, `${name.replace(/^kjx\./, '')}.sock`);
  }

  /** One QEMU: booted (saving at ready when asked) or restored; the request goes in after ready. */
  async function startOnce(
    base: VmConfig,
    archive: Buffer,
    io: RunIo,
    how: {
      restore?: string;
      key?: string;
      save?: { snap: EphemeralSnapshots; key: string; qemuVersion: string; accel: Accel };
    },
  ): Promise<{ result: GuestRunResult; restoreFailed?: string }> {
    let lastPortData = performance.now();
    let portBytes = 0;
    const copies = receiveCopies(e.stateDir, outs);
    let cmdSock: Socket | undefined;
    let cmdConnected!: () => void;
    const cmdReady = new Promise<void>((r) => {
      cmdConnected = r;
    });
    const servers = PORTS.map((name) => {
      const socket = portSocket(name);
      rmSync(socket, { force: true });
      const sink = (b: Buffer) => {
        lastPortData = performance.now();
        portBytes += b.length;
        if (name === STDOUT_PORT) io.stdout.write(b);
        else if (name === STDERR_PORT) io.stderr.write(b);
        else if (name === FILES_PORT) copies?.push(b);
      };
      const srv = portServer(socket, sink, (sock) => {
        if (name !== CMD_PORT) return;
        cmdSock = sock;
        cmdConnected();
      });
      return { name, ...srv };
    });
    await Promise.all(servers.map((p) => new Promise((r) => p.server.once('listening', r))));
    rmSync(base.qmpSocket!, { force: true });

    const config: VmConfig = {
      ...base,
      ...(how.restore ? { incoming: incomingFrom(how.restore) } : {}),
    };
    let limits: ReturnType<typeof watchLimits> | undefined;
    let qmp: QmpClient | undefined;
    let saved: { bytes: number; seconds: number } | undefined;
    try {
      const vm = startVm(config, { consoleLog: join(e.stateDir, 'console.log') });
      session = vm;
      writeFileSync(join(e.stateDir, 'qemu.pid'), `${vm.pid}\n`);
      writeFileSync(join(e.stateDir, 'argv.json'), `${JSON.stringify(vm.argv, null, 2)}\n`);
      void vm.exited.then(() => {
        exitedAt = performance.now();
      });
      limits = watchLimits(io, {
        startedAt: vm.startedAt,
        lastOutputAt: () => Math.max(vm.lastOutputAt(), lastPortData),
        late: 'the run did not finish',
      });
      const watch = limits;

      // the request: after ready, with this run's nonce (a restored guest still holds the saving boot's)
      const deliver = async (): Promise<void> => {
        if (how.restore) {
          qmp = await connectQmpWhileUp(base.qmpSocket!, vm);
          await resumeIncoming(qmp, () => exitedAt === undefined);
          resumedAt = performance.now();
        }
        if (how.save) {
          qmp = await connectQmpWhileUp(base.qmpSocket!, vm);
          saved = await saveAtReady(qmp, vm, how.save).catch((err: unknown) => {
            how.save!.snap.warn({
              code: 'SNAPSHOT_SAVE',
              message: `the VM was not saved as a snapshot: ${(err as Error).message}`,
            });
            return undefined;
          });
        }
        await cmdReady;
        const request = runRequest({
          nonce: vm.nonce,
          epoch: Date.now() / 1000,
          seed: randomBytes(32),
          archive,
        });
        // the end of the stream ends the archive for the guest's cpio (run-hook.sh)
        cmdSock!.end(request);
      };
      const delivered = deliver();
      delivered.catch(() => {}); // a QEMU gone before ready is reported by the signals below

      type Ending = { outcome: Outcome; status?: number; message?: string; excerpt?: string };
      let graceTimer: NodeJS.Timeout | undefined;
      let decided = false;
      const excerpt = () => tail(vm.console(), 30);
      const ending = await new Promise<Ending>((resolve) => {
        // the limits below end a wait that takes too long; this one only needs to outlast them
        vm.waitForMarker('exit', FOREVER_MS).then(
          (m) => {
            const status = exitStatus(m);
            // only the run hook prints it, as root: a status that is not 0-255 is no status
            if (status !== undefined) resolve({ outcome: 'exited', status });
            else
              resolve({
                outcome: 'vm-failed',
                message: `the guest's exit marker carries no exit status 0-255 (status=${JSON.stringify(m.fields.status ?? '')})`,
                excerpt: excerpt(),
              });
          },
          (err: unknown) => {
            // the other signals below report what else happened
            const missing = vm.nonceMissing();
            if (missing && err === missing)
              resolve({
                outcome: 'vm-failed',
                message: `${missing.message}; ${missing.hint}`,
                excerpt: excerpt(),
              });
          },
        );
        void vm.panic.then((p) => resolve({ outcome: 'panic', message: p.line, excerpt: p.excerpt }));
        void vm.exited.then((code) => {
          // give a just-printed exit marker precedence over QEMU's exit
          if (decided) return;
          graceTimer = setTimeout(() => {
            const started = how.restore !== undefined || vm.markers().some((m) => m.event === 'init');
            resolve({
              outcome: 'vm-failed',
              message: started
                ? `the guest stopped before the command finished (QEMU exit ${code})${how.restore && vm.stderr().trim() ? `:\n${tail(vm.stderr())}` : ''}`
                : `QEMU exited before the guest started (exit ${code})${vm.stderr().trim() ? `:\n${tail(vm.stderr())}` : ''}`,
              excerpt: excerpt(),
            });
          }, 50);
        });
        void watch.hit.then((h) => resolve({ ...h, excerpt: excerpt() }));
      });
      // once decided, the grace is moot: left running it kept kjx alive 50 ms after every run
      decided = true;
      clearTimeout(graceTimer);

      if (ending.outcome === 'exited') {
        // let the guest's poweroff finish so every byte on the ports is flushed
        await Promise.race([vm.exited, delay(10_000)]);
        await Promise.race([Promise.all(servers.map((p) => p.closed)), delay(2_000)]);
        copies?.finish();
      }
      await vm.stop(2000);
      const start: GuestRunResult['start'] = {
        how: how.restore ? 'restored' : 'booted',
        ...(how.key ? { key: how.key } : {}),
        ...(saved ? { saved } : {}),
      };
      // QEMU that ended without a byte from the guest, having loaded nothing: the stream is at fault
      if (
        how.restore &&
        ending.outcome === 'vm-failed' &&
        portBytes === 0 &&
        /load|migrat/i.test(vm.stderr())
      )
        return { result: { ...ending, start }, restoreFailed: tail(vm.stderr(), 3).trim() };
      return { result: { ...ending, start } };
    } catch (err) {
      throw err instanceof KjxError
        ? err
        : new KjxError('VM_START', `could not run the VM: ${(err as Error).message}`, { cause: err });
    } finally {
      qmp?.close();
      limits?.cancel();
      await session?.stop(1000);
      for (const p of servers) p.server.close();
      cmdSock?.destroy();
      copies?.discard();
    }
  }

  return guest;
}

/** QMP of a QEMU we just started: retried while its socket is not there yet. */
async function connectQmpWhileUp(path: string, vm: Session): Promise<QmpClient> {
  let alive = true;
  void vm.exited.then(() => {
    alive = false;
  });
  for (;;) {
    try {
      return await connectQmp(path, 5000);
    } catch (err) {
      if (!alive) throw err;
      await delay(20);
    }
  }
}

/** Resolves when QMP reported `event` matching `pred`; rejects when QEMU exits first. */
async function qmpEvent(
  qmp: QmpClient,
  vm: Session,
  pred: (e: { event: string; data?: unknown }) => boolean,
): Promise<void> {
  let gone = false;
  void vm.exited.then(() => {
    gone = true;
  });
  for (;;) {
    if (qmp.events().some(pred)) return;
    if (gone) throw new Error('QEMU exited before the guest was ready');
    await delay(20);
  }
}

/**
 * Save the VM once its run hook waits on `kjx.cmd` (the guest opened the port):
 * stop it, stream its state through zstd into a temporary file of the store, adopt
 * it under its key, resume. Pages the guest freed are zero (`init_on_free=1`), which
 * QEMU's stream carries as a flag, not as 4 KiB.
 */
async function saveAtReady(
  qmp: QmpClient,
  vm: Session,
  s: { snap: EphemeralSnapshots; key: string; qemuVersion: string; accel: Accel },
): Promise<{ bytes: number; seconds: number }> {
  await qmpEvent(
    qmp,
    vm,
    (ev) =>
      ev.event === 'VSERPORT_CHANGE' &&
      (ev.data as { id?: string; open?: boolean } | undefined)?.id === CMD_PORT_ID &&
      (ev.data as { open?: boolean }).open === true,
  );
  let gone = false;
  void vm.exited.then(() => {
    gone = true;
  });
  const t0 = performance.now();
  const temp = tempStreamPath(s.snap.store, s.key);
  await qmp.execute('stop');
  try {
    await migrateToFile(qmp, temp, () => !gone);
    const rec = adoptSnapshot(s.snap.store, s.key, temp, {
      qemuVersion: s.qemuVersion,
      accel: s.accel,
      services: serviceEvents(vm.markers()),
    });
    return { bytes: rec.size, seconds: (performance.now() - t0) / 1000 };
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  } finally {
    await qmp.execute('cont');
  }
}

/**
 * Receive the files to copy out as the port delivers them, each into a temporary
 * file beside its target; `finish` renames the whole ones into place and settles
 * each copy, `discard` removes whatever was not finished.
 */
function receiveCopies(
  stateDir: string,
  outs: { guest: string; host: string; settle: (r: CopiedFile) => void }[],
): { push(b: Buffer): void; finish(): void; discard(): void } | undefined {
  if (outs.length === 0) return undefined;
  const temps = outs.map((o) => tempNameFor(o.host));
  const fds = new Map<number, number>();
  const fd = (i: number): number => {
    let f = fds.get(i);
    if (f === undefined) {
      f = openSync(temps[i]!, 'w', 0o600);
      fds.set(i, f);
    }
    return f;
  };
  const parser = copyOutParser(outs.length, (i, bytes) => {
    writeSync(fd(i), bytes);
  });
  let done = false;
  const closeAll = () => {
    for (const f of fds.values()) closeSync(f);
    fds.clear();
  };
  void stateDir;
  return {
    push: (b) => parser.push(b),
    finish() {
      if (done) return;
      done = true;
      closeAll();
      parser.end().forEach((r, i) => {
        const o = outs[i]!;
        if (r.ok) {
          // an empty file sent no bytes, so nothing opened its temporary
          if (r.size === 0) writeFileSync(temps[i]!, '', { mode: 0o600 });
          renameSync(temps[i]!, o.host);
        } else rmSync(temps[i]!, { force: true });
        o.settle(r);
      });
      outs.splice(0);
    },
    discard() {
      closeAll();
      if (!done) for (const t of temps) rmSync(t, { force: true });
    },
  };
}
