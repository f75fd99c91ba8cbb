/**
 * What `kjx run` adds to a guest (docs/guest-protocol.md): the run hook, which init
 * starts once the system is ready, and the run request it waits for on the
 * virtio-serial port `kjx.cmd`: the marker nonce, the wall clock and a random seed of
 * this run, and a cpio archive with the command script and the files copied in. The
 * request comes after ready, so a VM restored from a snapshot taken while the hook
 * waited runs its command exactly as a cold one does. The hook sends the command's
 * stdout and stderr to the ports `kjx.stdout` and `kjx.stderr`, prints the exit
 * marker, and powers the guest off. The hook's shell is src/guest/sh/run-hook.sh.
 */
import { NONCE_FILE } from './markers.js';
import { readShFile, renderSh, type ShValues } from './sh-file.js';

export const RUN_HOOK_PATH = '/usr/lib/kjx/run-hook';
export const RUN_CMD_PATH = '/kjx/run/cmd';
export const STDOUT_PORT = 'kjx.stdout';
export const STDERR_PORT = 'kjx.stderr';
export const CMD_PORT = 'kjx.cmd';
/** The helper that reseeds the kernel's random generator (reseed-elf.ts). */
export const RESEED_PATH = '/usr/lib/kjx/reseed';
/** `kjx test`'s check preparations, which the hook runs before it waits (checks.ts). */
export const PREPARE_PATH = '/usr/lib/kjx/check-prepare';

/** Quote one word for sh, whatever it contains. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The values run-hook.sh declares, as a `kjx run` VM gets them. */
export function runHookValues(): ShValues {
  return {
    KJX_STDOUT_PORT: STDOUT_PORT,
    KJX_STDERR_PORT: STDERR_PORT,
    KJX_CMD_PORT: CMD_PORT,
    KJX_RESEED: RESEED_PATH,
    KJX_PREPARE: PREPARE_PATH,
    KJX_RUN_CMD: RUN_CMD_PATH,
    KJX_NONCE_FILE: NONCE_FILE,
  };
}

/** The run hook (src/guest/sh/run-hook.sh). */
export function runHook(values: ShValues = runHookValues()): string {
  return renderSh(readShFile(new URL('./sh/run-hook.sh', import.meta.url)), values);
}

export interface RunCommand {
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
}

/** The command script: environment, working directory, then exec the command. */
export function runCommandScript(c: RunCommand): string {
  const lines = ['#!/bin/sh', '# the command given to kjx run'];
  for (const [k, v] of Object.entries(c.env).sort(([a], [b]) => (a < b ? -1 : 1)))
    lines.push(`export ${k}=${shQuote(v)}`);
  if (c.cwd) lines.push(`cd ${shQuote(c.cwd)} || exit 127`);
  lines.push(`exec ${c.argv.map(shQuote).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** What makes one run's request besides its archive. */
export interface RunRequest {
  /** The marker nonce of this run (a restored guest still holds the saving boot's). */
  nonce: string;
  /** The host's wall clock, seconds since 1970. */
  epoch: number;
  /** Random bytes mixed into the guest's pool before its generator is reseeded. */
  seed: Buffer;
  /** The cpio archive unpacked at / (command script, copied-in files). */
  archive: Buffer;
}

/** The bytes sent on `kjx.cmd`: the header line run-hook.sh reads, then the archive. */
export function runRequest(r: RunRequest): Buffer {
  if (!/^[0-9a-f]{32}$/.test(r.nonce)) throw new Error('a run request needs a 128-bit hex nonce');
  const epoch = Math.floor(r.epoch);
  const head = `kjx-run 1 ${r.nonce} ${epoch} ${r.seed.toString('hex')} ${r.archive.length}\n`;
  return Buffer.concat([Buffer.from(head), r.archive]);
}

/** What a restored detached VM runs over SSH to leave the saving boot's randomness and clock behind (src/guest/sh/restore-fresh.sh). */
export function restoreFreshScript(r: { seed: Buffer; epoch: number }): string {
  return renderSh(readShFile(new URL('./sh/restore-fresh.sh', import.meta.url)), {
    KJX_SEED: r.seed.toString('hex'),
    KJX_EPOCH: String(Math.floor(r.epoch)),
  });
}
