/**
 * The applet list of a busybox binary, read from its bytes without running it
 * (the binary may be for another architecture, and builds never execute
 * package contents).
 *
 * busybox's build (applets/applet_tables.c) emits `applet_names[]`, one string
 * with every applet name NUL-terminated, sorted by strcmp so the multiplexer can
 * binary-search it (libbb/appletlib.c, find_applet_by_name). With the test
 * applets enabled it starts "[\0[[\0" — '[' sorts before every lowercase name.
 * We find that start and read names for as long as they look like applet names
 * and keep ascending; what follows the table in .rodata is anything else.
 */
import { KjxError } from '../util/errors.js';

const START = Buffer.from('[\0[[\0', 'latin1');
const NAME = /^[a-z0-9_.\-[]+$/;

/** Names readable as a sorted applet table starting at `at`. */
function readTable(bin: Buffer, at: number): string[] {
  const names: string[] = [];
  let pos = at;
  let prev = '';
  while (pos < bin.length) {
    const end = bin.indexOf(0, pos);
    if (end < 0) break;
    const name = bin.toString('latin1', pos, end);
    // Strictly ascending by bytes: strcmp order, which the binary search relies on.
    if (!NAME.test(name) || (names.length > 0 && !(name > prev))) break;
    names.push(name);
    prev = name;
    pos = end + 1;
  }
  return names;
}

/**
 * Extract the applet names of a busybox binary, in the binary's (sorted) order.
 * Throws KjxError ELF_INVALID if the bytes are not ELF or hold no applet table.
 */
export function busyboxApplets(binary: Buffer): string[] {
  if (binary.length < 4 || binary.readUInt32BE(0) !== 0x7f454c46) {
    throw new KjxError('ELF_INVALID', 'busybox: not an ELF file', {
      hint: 'the busybox package content is damaged or is not a busybox binary',
    });
  }
  // The start pattern can also occur by chance (e.g. in help text); the real
  // table is the longest sorted run, so try every occurrence.
  let best: string[] = [];
  for (let at = binary.indexOf(START); at >= 0; at = binary.indexOf(START, at + 1)) {
    const names = readTable(binary, at);
    if (names.length > best.length) best = names;
  }
  // "[" and "[[" alone are not a table; a real busybox has dozens of applets.
  if (best.length < 3) {
    throw new KjxError('ELF_INVALID', 'busybox: no applet name table ("[\\0[[\\0...") found in the binary', {
      hint: 'is this a busybox built with the test applets ([ and [[)? Debian busybox and busybox-static are',
    });
  }
  return best;
}
