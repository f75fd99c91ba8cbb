/**
 * `kjx run`: boot an ephemeral VM from built artifacts, run one command in it, stream
 * its stdout and stderr (virtio-serial ports, not the console) and return its exit
 * status. Three signals are watched together: QEMU exiting, guest markers (and panic
 * lines) on the console, and a wall-clock plus a silence timeout. Whatever happens,
 * QEMU is gone when this returns.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { RUN_FW_CFG_NAME } from '../guest/layout.js';
import { exitStatus } from '../guest/markers.js';
import type { RunCommand } from '../guest/run-hook.js';
import { STDERR_PORT, STDOUT_PORT } from '../guest/run-hook.js';
import type { Manifest } from '../image/manifest.js';
import { KjxError } from '../util/errors.js';
import { tail } from '../util/exec.js';
import { directInitrd, directKernel } from './direct-boot.js';
import { appendPayload, type Mount, runPayload } from './payload.js';
import type { VmConfig, VmMedia } from './qemu-args.js';
import { type Session, startVm, type TimedMarker } from './session.js';

export interface RunArtifacts {
  kernel: string;
  /** The kernel's sha256 from the build record, if known. */
  kernelSha256?: string;
  initrd: string;
  manifest: Manifest;
  cmdline: string;
}

export interface RunOptions {
  artifacts: RunArtifacts;
  command: RunCommand;
  mounts: Mount[];
  stateDir: string;
  accel: 'kvm' | 'tcg';
  memoryMiB: number;
  cpus: number;
  /** Wall-clock limit for the whole run, seconds. */
  timeoutS: number;
  /** Longest time with no output at all (console or command), seconds; 0 = no limit. */
  silenceS: number;
  stdout: Writable;
  stderr: Writable;
  /** Extra QEMU settings (machine type, ...) from the caller. */
  vm?: Partial<VmConfig>;
  /**
   * Boot this medium instead of the kernel and initramfs. The command then goes
   * to the guest over fw_cfg (a disk gets `snapshot=on`: the run leaves it as it was).
   */
  media?: VmMedia;
}

export type Outcome = 'exited' | 'panic' | 'timeout' | 'silence' | 'vm-failed';

/** A service state change the guest reported, in guest seconds since boot. */
export interface ServiceEvent {
  name: string;
  state: string;
  uptime: number;
}

/** Service state changes in the order the guest reported them (`@@kjx:service` markers). */
export function serviceEvents(markers: TimedMarker[]): ServiceEvent[] {
  return markers
    .filter((m) => m.event === 'service' && m.fields.name && m.fields.state)
    .map((m) => ({ name: m.fields.name!, state: m.fields.state!, uptime: Number(m.fields.t) }));
}

/** Boot phases in seconds since QEMU was spawned (host clock; guest uptime where noted). */
export interface Phases {
  kernelStart?: number;
  initExec?: number;
  stage2?: number;
  ready?: number;
  commandDone?: number;
  qemuExit?: number;
}

export interface RunResult {
  outcome: Outcome;
  /** The guest command's exit status (outcome `exited`). */
  status?: number;
  message?: string;
  /** Console excerpt for failures. */
  excerpt?: string;
  phases: Phases;
  services: ServiceEvent[];
  stateDir: string;
  accel: 'kvm' | 'tcg';
}

/** A wait that never keeps the process alive by itself. */
function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Listen on a unix socket for QEMU's virtio-serial chardev and pipe what arrives. */
function portServer(
  path: string,
  sink: Writable,
  onData: () => void,
): { server: Server; closed: Promise<void> } {
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });
  const server = createServer((sock: Socket) => {
    sock.on('data', (b) => {
      onData();
      sink.write(b);
    });
    sock.on('close', () => resolveClosed());
    sock.on('error', () => resolveClosed());
  });
  server.listen(path);
  return { server, closed };
}

/** Phases from marker arrival times; kernel start from the init marker's guest uptime. */
export function phasesOf(s: { startedAt: number; markers: TimedMarker[]; exitedAt?: number }): Phases {
  const sec = (at: number) => (at - s.startedAt) / 1000;
  const first = (e: string) => s.markers.find((m) => m.event === e);
  const p: Phases = {};
  const init = first('init');
  if (init) p.initExec = sec(init.at);
  // the guest's uptime at a marker dates the kernel's start on the host clock
  // (the init marker comes before /proc is mounted, so a later one carries it)
  const dated = s.markers.find((m) => Number(m.fields.uptime) > 0);
  if (dated) p.kernelStart = Math.max(0, sec(dated.at) - Number(dated.fields.uptime));
  const stage2 = first('stage2');
  if (stage2) p.stage2 = sec(stage2.at);
  const ready = first('ready');
  if (ready) p.ready = sec(ready.at);
  const exit = first('exit');
  if (exit) p.commandDone = sec(exit.at);
  if (s.exitedAt !== undefined) p.qemuExit = sec(s.exitedAt);
  return p;
}

export async function runInVm(o: RunOptions): Promise<RunResult> {
  const imagePaths = new Set(o.artifacts.manifest.files.map((f) => f.path));
  const payload = runPayload(o.command, o.mounts, imagePaths);
  const initrd = join(o.stateDir, 'initrd');
  const fwCfgFile = join(o.stateDir, 'run.cpio');
  // a medium's boot loader reads the initramfs from the medium: the payload goes over fw_cfg
  const boot: Partial<VmConfig> = o.media
    ? {
        kernel: '',
        cmdline: '',
        media: { ...o.media, snapshot: true },
        fwCfg: [{ name: RUN_FW_CFG_NAME, file: fwCfgFile }],
      }
    : { initrd };
  let kernel = o.artifacts.kernel;
  // 0600: the image may hold host keys (ssh.hostKeyFiles), the payload --mount'ed files
  if (o.media) writeFileSync(fwCfgFile, payload, { mode: 0o600 });
  else {
    const image = await directInitrd(readFileSync(o.artifacts.initrd), o.artifacts.initrd);
    writeFileSync(initrd, appendPayload(image, payload), { mode: 0o600 });
    // OVMF has no PVH loader; qboot and SeaBIOS (QEMU's option ROM) do
    if (o.vm?.firmware?.kind !== 'uefi' && !o.vm?.kernel)
      kernel = (await directKernel(kernel, o.artifacts.kernelSha256)).path;
  }

  let lastPortData = performance.now();
  const touch = () => {
    lastPortData = performance.now();
  };
  const out = portServer(join(o.stateDir, 'stdout.sock'), o.stdout, touch);
  const err = portServer(join(o.stateDir, 'stderr.sock'), o.stderr, touch);
  await Promise.all([out.server, err.server].map((s) => new Promise((r) => s.once('listening', r))));

  const config: VmConfig = {
    accel: o.accel,
    memoryMiB: o.memoryMiB,
    cpus: o.cpus,
    kernel,
    cmdline: o.artifacts.cmdline,
    ...boot,
    console: { kind: 'stdio' },
    ports: [
      { name: STDOUT_PORT, socket: join(o.stateDir, 'stdout.sock') },
      { name: STDERR_PORT, socket: join(o.stateDir, 'stderr.sock') },
    ],
    ...o.vm,
  };
  let vm: Session | undefined;
  let exitedAt: number | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    vm = startVm(config, { consoleLog: join(o.stateDir, 'console.log') });
    writeFileSync(join(o.stateDir, 'qemu.pid'), `${vm.pid}\n`);
    writeFileSync(join(o.stateDir, 'argv.json'), `${JSON.stringify(vm.argv, null, 2)}\n`);
    const session = vm;
    void session.exited.then(() => {
      exitedAt = performance.now();
    });

    type Ending = { outcome: Outcome; status?: number; message?: string; excerpt?: string };
    const ending = await new Promise<Ending>((resolve) => {
      session.waitForMarker('exit', o.timeoutS * 1000 + 60_000).then(
        (m) => {
          const status = exitStatus(m);
          // only the run hook prints it, as root: a status that is not 0-255 is no status
          if (status !== undefined) resolve({ outcome: 'exited', status });
          else
            resolve({
              outcome: 'vm-failed',
              message: `the guest's exit marker carries no exit status 0-255 (status=${JSON.stringify(m.fields.status ?? '')})`,
              excerpt: tail(session.console(), 30),
            });
        },
        (e: unknown) => {
          // the other signals below report what else happened
          const missing = session.nonceMissing();
          if (missing && e === missing)
            resolve({
              outcome: 'vm-failed',
              message: `${missing.message}; ${missing.hint}`,
              excerpt: tail(session.console(), 30),
            });
        },
      );
      void session.panic.then((p) => resolve({ outcome: 'panic', message: p.line, excerpt: p.excerpt }));
      void session.exited.then((code) => {
        // give a just-printed exit marker precedence over QEMU's exit
        setTimeout(() => {
          const started = session.markers().some((m) => m.event === 'init');
          resolve({
            outcome: 'vm-failed',
            message: started
              ? `the guest stopped before the command finished (QEMU exit ${code})`
              : `QEMU exited before the guest started (exit ${code})${session.stderr().trim() ? `:\n${tail(session.stderr())}` : ''}`,
            excerpt: tail(session.console(), 30),
          });
        }, 50);
      });
      timers.push(
        setTimeout(
          () =>
            resolve({
              outcome: 'timeout',
              message: `the run did not finish within --timeout ${o.timeoutS}s`,
              excerpt: tail(session.console(), 30),
            }),
          o.timeoutS * 1000,
        ),
      );
      if (o.silenceS > 0) {
        const tick = setInterval(() => {
          const quiet = performance.now() - Math.max(session.lastOutputAt(), lastPortData);
          if (quiet > o.silenceS * 1000) {
            resolve({
              outcome: 'silence',
              message: `no output from the guest for ${o.silenceS}s (--silence); it looks hung`,
              excerpt: tail(session.console(), 30),
            });
          }
        }, 250);
        timers.push(tick);
      }
    });

    if (ending.outcome === 'exited') {
      // let the guest's poweroff finish so every byte on the ports is flushed
      await Promise.race([session.exited, delay(10_000)]);
      await Promise.race([Promise.all([out.closed, err.closed]), delay(2_000)]);
    }
    await session.stop(2000);
    return {
      ...ending,
      services: serviceEvents(session.markers()),
      phases: phasesOf({
        startedAt: session.startedAt,
        markers: session.markers(),
        exitedAt: exitedAt ?? performance.now(),
      }),
      stateDir: o.stateDir,
      accel: o.accel,
    };
  } catch (e) {
    throw e instanceof KjxError
      ? e
      : new KjxError('VM_START', `could not run the VM: ${(e as Error).message}`, { cause: e });
  } finally {
    for (const t of timers) clearTimeout(t);
    await vm?.stop(1000);
    out.server.close();
    err.server.close();
    // the console log and argv stay for a look afterwards; the initramfs copy (up to
    // hundreds of MB with container runtimes) is of no use once QEMU is gone
    rmSync(initrd, { force: true });
  }
}
