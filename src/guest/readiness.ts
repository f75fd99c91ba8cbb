/**
 * Readiness: how a service tells kjx it is ready, and the run-script lines for each
 * kind (docs/services.md). A ready service has a flag, /run/kjx/ready/NAME, holding
 * the pid that was ready; dependents wait for it, `check` reads it, `sv -w N start`
 * uses that check.
 *
 * - started: ready as soon as the program is exec'd.
 * - file, port, check: /usr/lib/kjx/ready-poll, detached, polls while the program
 *   lives: file and port every 0.05 s for 2 s then every 0.2 s, check every 0.2 s.
 * - signal: the program sends SIGUSR1 to its parent. runsv dies on SIGUSR1 (runit
 *   2.1.2), so the parent is a small wrapper shell that traps it (`services.ts`).
 */
import type { ReadySpec } from '../spec/schema.js';
import { SV_LIB } from './layout.js';
import { readShFile, renderSh, type ShValues } from './sh-file.js';
import { script, shQuote } from './shell.js';

/** A port as /proc/net/tcp writes it: four upper-case hex digits (22 → 0016). */
export function portHex(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/** /usr/lib/kjx/ready-poll NAME PID KIND ARG (src/guest/sh/ready-poll.sh; for port, ARG is `portHex`) */
export function readyPollScript(values: ShValues = { KJX_SV_LIB: SV_LIB }): string {
  return renderSh(readShFile(new URL('./sh/ready-poll.sh', import.meta.url)), values);
}

/** Lines of a run script, just before it execs the program (not for `signal`). */
export function readinessLines(name: string, ready: ReadySpec): string[] {
  switch (ready.kind) {
    case 'started':
      return [`kjx_set_ready ${shQuote(name)} $$`];
    case 'file':
      return [`kjx_poll_ready ${shQuote(name)} file ${shQuote(ready.path)}`];
    case 'port':
      return [`kjx_poll_ready ${shQuote(name)} port ${portHex(ready.port)}`];
    case 'check':
      return [`kjx_poll_ready ${shQuote(name)} check ${shQuote(ready.command)}`];
    case 'signal':
      return [];
  }
}

/** The `check` script of a service (what `sv -w N start /etc/service/NAME` waits for). */
export function checkScript(name: string): string {
  return script(`readiness check of ${name}`, [`. ${SV_LIB}`, `kjx_is_ready ${shQuote(name)}`]);
}
