/**
 * Where the generated guest system keeps things. One place, so the stages, the
 * service scripts and the docs (docs/services.md) agree.
 */

/** Default PATH of every generated script. */
export const GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Service directories (run, finish, check, log/run). */
export const SV_DIR = '/etc/sv';
/** What runsvdir watches: one symlink per enabled service into SV_DIR. */
export const SERVICE_DIR = '/etc/service';
/** runsv state (supervise/) lives in tmpfs, so the image itself stays read-only. */
export const SUPERVISE_DIR = '/run/runit/supervise';
/** kjx's runtime state: ready flags and per-service bookkeeping. */
export const STATE_DIR = '/run/kjx';
/** Generated helpers: the service library, the readiness poller, boot-ready. */
export const LIB_DIR = '/usr/lib/kjx';
export const SV_LIB = `${LIB_DIR}/sv.sh`;
export const READY_POLL = `${LIB_DIR}/ready-poll`;
export const BOOT_READY = `${LIB_DIR}/boot-ready`;
/** `kjx run` adds this at boot time (src/guest/run-hook.ts); stage 2 runs it once everything is ready. */
export const RUN_HOOK = `${LIB_DIR}/run-hook`;
/** `kjx run` with a boot medium hands the same files over fw_cfg instead: a cpio extracted into / before the hook runs. */
export const RUN_FW_CFG_NAME = 'opt/kjx/run.cpio';
/** The kernel modules stage 1 loads, one name a line in load order (a `--kernel` boot replaces it: src/vm/dev-kernel.ts). */
export const MODULES_LIST = '/etc/kjx/modules';
/** Debian's runit reads its shutdown flags here (mode 100 = act on the next SIGCONT). */
export const RUNIT_STOPIT = '/run/runit.stopit';
export const RUNIT_REBOOT = '/run/runit.reboot';
/** Where svlogd writes a service's log. */
export function logDir(service: string): string {
  return `/var/log/${service}`;
}
/** Seconds a user `finish` command may take before it is killed (runit has no finish timeout). */
export const FINISH_TIMEOUT = 5;
/** A service that ran at least this long counts as healthy again: its restart backoff starts over. */
export const HEALTHY_AFTER = 10;
