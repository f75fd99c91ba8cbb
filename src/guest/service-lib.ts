/**
 * The service library, /usr/lib/kjx/sv.sh (the shell is src/guest/sh/sv.sh):
 * functions every generated run, finish and check script sources. It implements
 * what runit lacks (docs/services.md): readiness flags, waiting for dependencies,
 * stopping dependents, restart policies with backoff, and the console markers of
 * docs/guest-protocol.md.
 *
 * Runtime state, all in tmpfs:
 *   /run/kjx/ready/NAME        pid of the process that was ready (gone = not ready)
 *   /run/kjx/svc/NAME/pid      pid runsv started (run, then the program it execs)
 *   /run/kjx/svc/NAME/pgid     process group of the program (chpst -P), killed on finish
 *   /run/kjx/svc/NAME/child    the program's pid when a wrapper shell is its parent
 *   /run/kjx/svc/NAME/poller   pid of the readiness poller
 *   /run/kjx/svc/NAME/started  uptime when it started; fails: quick failures in a row
 *   /run/kjx/svc/NAME/stopped-by  set when a dependency's finish stopped it
 *
 * Measured pitfalls it works around (busybox 1.35, runit 2.1.2): `sv check` says ok
 * for a down service, so readiness is our own flag; busybox ash's `wait -n` misses
 * jobs killed by signals, so the wrapper waits on one pid in a loop; runsv dies on
 * SIGUSR1, so a program that signals its parent gets a wrapper shell as parent.
 */
import { HEALTHY_AFTER, READY_POLL, SERVICE_DIR, STATE_DIR } from './layout.js';
import { NONCE_FILE } from './markers.js';
import { readShFile, renderSh, type ShValues } from './sh-file.js';

/** The values sv.sh declares, as an image gets them. */
export function serviceLibValues(): ShValues {
  return {
    KJX_SV: SERVICE_DIR,
    KJX_STATE: STATE_DIR,
    KJX_NONCE_FILE: NONCE_FILE,
    KJX_READY_POLL: READY_POLL,
    KJX_HEALTHY_AFTER: HEALTHY_AFTER,
  };
}

/** /usr/lib/kjx/sv.sh (tests give their own values: a state directory of their own). */
export function serviceLib(values: ShValues = serviceLibValues()): string {
  return renderSh(readShFile(new URL('./sh/sv.sh', import.meta.url)), values);
}
