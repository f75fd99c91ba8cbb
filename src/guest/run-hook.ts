/**
 * What `kjx run` adds to a guest at boot time (docs/guest-protocol.md): the run hook,
 * which init starts once the system is ready, and the command script it runs. The
 * hook sends the command's stdout and stderr to the virtio-serial ports `kjx.stdout`
 * and `kjx.stderr`, prints the exit marker, and powers the guest off. The hook's
 * shell is src/guest/sh/run-hook.sh.
 */
import { NONCE_FILE } from './markers.js';
import { readShFile, renderSh, type ShValues } from './sh-file.js';

export const RUN_HOOK_PATH = '/usr/lib/kjx/run-hook';
export const RUN_CMD_PATH = '/kjx/run/cmd';
export const STDOUT_PORT = 'kjx.stdout';
export const STDERR_PORT = 'kjx.stderr';

/** Quote one word for sh, whatever it contains. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The values run-hook.sh declares, as a `kjx run` VM gets them. */
export function runHookValues(): ShValues {
  return {
    KJX_STDOUT_PORT: STDOUT_PORT,
    KJX_STDERR_PORT: STDERR_PORT,
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
