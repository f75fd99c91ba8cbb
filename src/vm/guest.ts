/**
 * The one interface to a running guest, whatever kind of VM it is:
 *
 * - ephemeral (`ephemeral.ts`): booted for one command, which travels in the run
 *   payload; its stdout and stderr come over virtio-serial ports, and the VM powers
 *   off when the command ends. Files to copy in and out are given before the run.
 * - detached (`detached.ts`): a VM in the background, reached over SSH with the
 *   host key pinned from its boot; any number of commands and copies.
 *
 * `kjx run`, `test`, `trace` (ephemeral and `--vm`) and `exec` all drive a Guest;
 * `launch.ts` makes one from a prepared boot (`prepare.ts`).
 */
import type { Readable, Writable } from 'node:stream';
import type { BootTiming } from './boot-phases.js';
import type { TimedMarker } from './console.js';

export type Accel = 'kvm' | 'tcg';

/** A command for the guest: argv, run with this environment in this directory (as root). */
export interface GuestCommand {
  argv: string[];
  env?: Record<string, string>;
  /** Working directory in the guest (default: the guest's own, `/` for ephemeral VMs). */
  cwd?: string;
}

/**
 * How long a command may take, in the same sense for every command that boots or
 * runs (`--timeout`, `--silence`, defined once in src/cli/vm-options.ts).
 */
export interface Limits {
  /** Wall-clock seconds, counted from QEMU's start for a VM booted for this command, else from the command's start. */
  timeoutS?: number;
  /** Longest time with no output at all (console or command), seconds; 0 or absent = no limit. */
  silenceS?: number;
}

export interface RunIo extends Limits {
  /** Only detached guests read stdin; an ephemeral run's command has /dev/null. */
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
}

export type Outcome = 'exited' | 'panic' | 'timeout' | 'silence' | 'vm-failed';

/** How a command ended. */
export interface GuestRunResult {
  outcome: Outcome;
  /** The command's exit status (outcome `exited`). */
  status?: number;
  message?: string;
  /** Console excerpt for failures. */
  excerpt?: string;
  /**
   * How an ephemeral VM started: booted, or restored from a snapshot at ready; and
   * the snapshot a boot saved for the next run (docs/boot-time.md).
   */
  start?: {
    how: 'booted' | 'restored';
    /** The snapshot key of this VM (absent when it uses none). */
    key?: string;
    saved?: { bytes: number; seconds: number };
  };
}

export interface StopResult {
  name: string;
  how: 'powerdown' | 'quit' | 'kill' | 'gone';
  seconds: number;
}

export interface Guest {
  readonly kind: 'ephemeral' | 'detached';
  /** The detached VM's name, or the ephemeral run directory's. */
  readonly name: string;
  /** Where this VM's files are: console.log, argv.json, sockets. */
  readonly stateDir: string;
  readonly accel: Accel;
  /** Run a command; output goes to the streams as it comes. */
  run(cmd: GuestCommand, io: RunIo): Promise<GuestRunResult>;
  /**
   * Copy a host file or directory to an absolute guest path. Ephemeral guests take
   * it with the command (call before `run`); detached ones at once.
   */
  copyIn(host: string, guest: string): Promise<void>;
  /**
   * Copy a regular file of the guest to a host path. Ephemeral guests send it when
   * the command has ended (call before `run`; the file is written when `run`
   * resolves); detached ones at once.
   */
  copyOut(guest: string, host: string): Promise<void>;
  /** The boot's markers as they arrived (empty for a guest attached to by name). */
  markers(): TimedMarker[];
  /** Boot phases and service times (`--timing`). */
  timing(): BootTiming;
  /** End the VM (a detached one: ACPI power-off, then quit, then kill). */
  stop(): Promise<StopResult>;
}
