/**
 * UEFI firmware for QEMU: OVMF from Debian's `ovmf` package, as one image QEMU
 * loads with `-bios` (variables are not kept between boots, which a test VM does
 * not need). SeaBIOS, QEMU's default, needs nothing.
 */
import { existsSync } from 'node:fs';
import { KjxError } from '../util/errors.js';

/** Where Debian (and most distributions) put the combined OVMF image. */
export const OVMF_PATHS = ['/usr/share/ovmf/OVMF.fd', '/usr/share/OVMF/OVMF.fd', '/usr/share/qemu/OVMF.fd'];

/** The OVMF image to boot UEFI guests with; HOST_TOOL_MISSING when none is installed. */
export function findOvmf(candidates: string[] = OVMF_PATHS): string {
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new KjxError('HOST_TOOL_MISSING', `no OVMF UEFI firmware (looked at ${candidates.join(', ')})`, {
      hint: 'install it with `apt-get install ovmf` (kjx doctor --install does it)',
    });
  }
  return found;
}
