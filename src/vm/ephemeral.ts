/**
 * An ephemeral VM as a Guest (guest.ts): booted for one command, which travels in the
 * run payload (payload.ts) with the files to copy in; its stdout and stderr stream
 * over the virtio-serial ports `kjx.stdout` and `kjx.stderr` (not the console), and
 * files to copy out come over `kjx.files` after it (src/guest/copy-out.ts). Three
 * signals are watched together: QEMU exiting, guest markers (and panic lines) on the
 * console, and the `--timeout`/`--silence` limits. Whatever happens, QEMU is gone
 * when `run` returns.
 */
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
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
import { STDERR_PORT, STDOUT_PORT } from '../guest/run-hook.js';
import { tempNameFor } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import { tail } from '../util/exec.js';
import { type BootTiming, bootTiming } from './boot-phases.js';
import { directInitrd } from './direct-boot.js';
import type { Accel, Guest, GuestCommand, GuestRunResult, Outcome, RunIo, StopResult } from './guest.js';
import { watchLimits } from './limits.js';
import { appendPayload, type Mount, type PayloadFile, runPayload } from './payload.js';
import type { VmConfig } from './qemu-args.js';
import { type Session, startVm } from './session.js';

/** What an ephemeral VM boots, from a prepared boot (launch.ts). */
export interface EphemeralSpec {
  /** The VM without console and ports; `initrd` is the image's (the payload is appended to a copy). */
  config: Omit<VmConfig, 'console'>;
  /** Paths the image has (its manifest): the payload leaves those directories out. */
  imagePaths: Set<string>;
  stateDir: string;
  /** The run directory's name. */
  name: string;
}

export interface EphemeralGuest extends Guest {
  readonly kind: 'ephemeral';
}

/** A wait that never keeps the process alive by itself. */
function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Listen on a unix socket for QEMU's virtio-serial chardev and hand on what arrives. */
function portServer(path: string, sink: (b: Buffer) => void): { server: Server; closed: Promise<void> } {
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });
  const server = createServer((sock: Socket) => {
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
    timing: (): BootTiming =>
      session
        ? bootTiming({
            startedAt: session.startedAt,
            markers: session.markers(),
            exitedAt: exitedAt ?? performance.now(),
          })
        : { phases: {}, services: [] },
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
    const payload = runPayload(command, mounts, e.imagePaths, extra);
    const initrd = join(e.stateDir, 'initrd');
    const fwCfgFile = join(e.stateDir, 'run.cpio');
    const c = e.config;
    // a medium's boot loader reads the initramfs from the medium: the payload goes over fw_cfg
    const boot: Partial<VmConfig> = c.media
      ? {
          media: { ...c.media, snapshot: true },
          fwCfg: [...(c.fwCfg ?? []), { name: RUN_FW_CFG_NAME, file: fwCfgFile }],
        }
      : { initrd };
    // 0600: the image may hold host keys (ssh.hostKeyFiles), the payload copied-in files
    if (c.media) writeFileSync(fwCfgFile, payload, { mode: 0o600 });
    else {
      const image = await directInitrd(readFileSync(c.initrd!), c.initrd!);
      writeFileSync(initrd, appendPayload(image, payload), { mode: 0o600 });
    }

    let lastPortData = performance.now();
    const port = (name: string, sink: (b: Buffer) => void) => {
      const socket = join(e.stateDir, `${name.replace(/^kjx\./, '')}.sock`);
      return { name, socket, ...portServer(socket, sink) };
    };
    const copies = receiveCopies(e.stateDir, outs);
    const ports = [
      port(STDOUT_PORT, (b) => {
        lastPortData = performance.now();
        io.stdout.write(b);
      }),
      port(STDERR_PORT, (b) => {
        lastPortData = performance.now();
        io.stderr.write(b);
      }),
      ...(copies ? [port(FILES_PORT, (b) => copies.push(b))] : []),
    ];
    await Promise.all(ports.map((p) => new Promise((r) => p.server.once('listening', r))));

    const config: VmConfig = {
      ...c,
      ...boot,
      console: { kind: 'stdio' },
      ports: ports.map((p) => ({ name: p.name, socket: p.socket })),
    };
    let limits: ReturnType<typeof watchLimits> | undefined;
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

      type Ending = { outcome: Outcome; status?: number; message?: string; excerpt?: string };
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
          setTimeout(() => {
            const started = vm.markers().some((m) => m.event === 'init');
            resolve({
              outcome: 'vm-failed',
              message: started
                ? `the guest stopped before the command finished (QEMU exit ${code})`
                : `QEMU exited before the guest started (exit ${code})${vm.stderr().trim() ? `:\n${tail(vm.stderr())}` : ''}`,
              excerpt: excerpt(),
            });
          }, 50);
        });
        void watch.hit.then((h) => resolve({ ...h, excerpt: excerpt() }));
      });

      if (ending.outcome === 'exited') {
        // let the guest's poweroff finish so every byte on the ports is flushed
        await Promise.race([vm.exited, delay(10_000)]);
        await Promise.race([Promise.all(ports.map((p) => p.closed)), delay(2_000)]);
        copies?.finish();
      }
      await vm.stop(2000);
      return ending;
    } catch (err) {
      throw err instanceof KjxError
        ? err
        : new KjxError('VM_START', `could not run the VM: ${(err as Error).message}`, { cause: err });
    } finally {
      limits?.cancel();
      await session?.stop(1000);
      for (const p of ports) p.server.close();
      copies?.discard();
      // the console log and argv stay for a look afterwards; the initramfs copy (up to
      // hundreds of MB with container runtimes) is of no use once QEMU is gone
      rmSync(initrd, { force: true });
    }
  }

  return guest;
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
