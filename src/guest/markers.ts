/**
 * Markers the guest prints on its console so the host can follow a boot without
 * guessing from free text (docs/guest-protocol.md). One line each:
 *
 *     @@kjx:<nonce>:<event>[ key=value...]
 *
 * The nonce is 128 random bits the host makes for each boot and hands in over
 * fw_cfg (`-fw_cfg name=opt/kjx/nonce`), which only root can read in the guest;
 * it is never part of an image or artifact. A line counts only when it starts
 * with this boot's prefix: anything else a guest process manages to put on the
 * console (a forged `@@kjx:exit status=0`, a kernel message quoting one, a
 * guessed nonce) is just text. Each marker is printed after a newline, so a
 * partial line on the console (the shell's prompt) never swallows one.
 */
import { randomBytes } from 'node:crypto';
import { STATE_DIR } from './layout.js';

export const MARKER_PREFIX = '@@kjx:';

/** The events of docs/guest-protocol.md. */
export type MarkerEvent = 'root' | 'init' | 'stage2' | 'service' | 'task' | 'hostkey' | 'ready' | 'exit';

export interface Marker {
  event: string;
  fields: Record<string, string>;
}

/** The kernel module behind /sys/firmware/qemu_fw_cfg (CONFIG_FW_CFG_SYSFS=m in Debian's kernels). */
export const FW_CFG_MODULE = 'qemu_fw_cfg';

/** fw_cfg name of the nonce (QEMU `-fw_cfg name=...,string=NONCE`). */
export const NONCE_FW_CFG_NAME = 'opt/kjx/nonce';
/** Where the guest reads it: the qemu_fw_cfg driver makes the file mode 0400, root's. */
export const NONCE_FW_CFG_RAW = `/sys/firmware/qemu_fw_cfg/by_name/${NONCE_FW_CFG_NAME}/raw`;
/** Stage 1's copy for the scripts that run later (mode 0600 in tmpfs). */
export const NONCE_FILE = `${STATE_DIR}/nonce`;
/** The shell variable generated scripts keep it in; never exported, never in argv. */
export const NONCE_VAR = 'kjx_nonce';

const NONCE_RE = /^[0-9a-f]{32}$/;

/** A fresh nonce for one boot. */
export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Parse one console line (without its line end). A marker only when the line
 * starts with `@@kjx:<nonce>:` for this boot's nonce; undefined otherwise.
 */
export function parseMarker(line: string, nonce: string): Marker | undefined {
  if (!NONCE_RE.test(nonce)) throw new Error(`not a kjx boot nonce: ${JSON.stringify(nonce)}`);
  const prefix = `${MARKER_PREFIX}${nonce}:`;
  if (!line.startsWith(prefix)) return undefined;
  const [event, ...rest] = line.slice(prefix.length).trimEnd().split(' ');
  if (!event || !/^[a-z0-9]+$/.test(event)) return undefined;
  const fields: Record<string, string> = {};
  for (const kv of rest) {
    const eq = kv.indexOf('=');
    if (eq > 0) fields[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { event, fields };
}

/**
 * An init marker without this boot's nonce: `@@kjx::init` (its /init could not
 * read fw_cfg) or `@@kjx:init` (an image from a kjx before nonces). None of the
 * guest's markers will ever count. Only meaningful before the first real marker,
 * when nothing but /init has run in the guest.
 */
export function isNoncelessInit(line: string): boolean {
  const l = line.trimEnd();
  return l === `${MARKER_PREFIX}:init` || l === `${MARKER_PREFIX}init`;
}

/** What the host says when a guest cannot read its nonce. */
export const NONCE_MISSING_HINT =
  "the guest kernel needs fw_cfg (CONFIG_FW_CFG_SYSFS): Debian's kernels have it as the qemu_fw_cfg module, which kjx loads; with kernel.image, build it in or list qemu_fw_cfg in kernel.modules. An image built by an older kjx needs a rebuild";

/** An exit marker's status: an integer 0–255 written plainly, else undefined. */
export function exitStatus(m: Marker): number | undefined {
  const s = m.fields.status;
  if (s === undefined || !/^(?:0|[1-9][0-9]{0,2})$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 255 ? n : undefined;
}

/**
 * The shell line that prints a marker on its stdout: one `echo` (a builtin, so
 * the nonce never shows in an argv) of a newline and the marker. `rest` is the
 * event and its fields, shell text inside double quotes (generated values only).
 */
export function markerEcho(rest: string): string {
  return `echo "\n${MARKER_PREFIX}$${NONCE_VAR}:${rest}"`;
}

/** The shell line that prints a marker for `event` with `fields` (see markerEcho). */
export function markerShell(event: MarkerEvent, fields = ''): string {
  return markerEcho(`${event}${fields ? ` ${fields}` : ''}`);
}

/**
 * Shell lines that read the nonce from fw_cfg into `$kjx_nonce`: mount sysfs if
 * needed and load the driver unless it is there (built in, or loaded before).
 * Empty when the guest cannot read it; its markers then say `@@kjx::`.
 */
export function nonceFromFwCfgLines(): string[] {
  return [
    `# this boot's nonce (docs/guest-protocol.md): fw_cfg, readable by root only`,
    `${NONCE_VAR}=`,
    '[ -d /sys/firmware ] || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys',
    `[ -d /sys/firmware/qemu_fw_cfg ] || modprobe -q ${FW_CFG_MODULE} 2>/dev/null`,
    "# read's status is no guide: fw_cfg's file has no final newline",
    `read -r ${NONCE_VAR} 2>/dev/null <${NONCE_FW_CFG_RAW}`,
  ];
}
