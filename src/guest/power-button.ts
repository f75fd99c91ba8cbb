/**
 * The ACPI power button (QMP `system_powerdown`, what `kjx stop` presses): the
 * kernel's `button` driver turns it into an input event, `evdev` exposes it as
 * /dev/input/event*, and busybox `acpid`, supervised as the built-in service
 * `acpid`, runs /etc/acpi/PWRF/00000080 for it (acpid's default action for
 * KEY_POWER), which powers off through runit stage 3.
 *
 * On with a Debian kernel package (which has both modules) and a kernel kjx builds
 * (every profile gets them, src/kernel/profiles/kjx.config); with a kernel image
 * from the host, list `evdev` (and `button` unless built in) in kernel.modules.
 */
import { addEntry, type EntrySource, mk, newTree, type Tree } from '../rootfs/tree.js';
import type { Spec } from '../spec/schema.js';
import { ACPID_SERVICE, DEFAULT_READY_TIMEOUT } from '../spec/values.js';
import { FW_CFG_MODULE } from './markers.js';
import type { GuestService } from './services.js';
import { script } from './shell.js';

/** Kernel modules the power button needs. */
export const POWER_BUTTON_MODULES = ['button', 'evdev'] as const;

export function powerButtonOn(spec: Pick<Spec, 'kernel'>): boolean {
  return spec.kernel.kind !== 'image' || spec.kernel.modules.includes('evdev');
}

/**
 * Modules the guest system adds to the spec's (deduplicated by the caller): the
 * power button's, and fw_cfg's, over which /init reads the boot's marker nonce
 * (src/guest/markers.ts). A kernel image from the host lists them itself; a
 * kernel kjx builds has them (built in, by kjx.config).
 */
export function guestKernelModules(spec: Pick<Spec, 'kernel'>): string[] {
  return spec.kernel.kind !== 'image' ? [...POWER_BUTTON_MODULES, FW_CFG_MODULE] : [];
}

export function acpidService(): GuestService {
  return {
    name: ACPID_SERVICE,
    spec: {
      run: 'acpid -d -c /etc/acpi',
      needs: [],
      ready: { kind: 'started', timeout: DEFAULT_READY_TIMEOUT },
      restart: { policy: 'always', delay: 1, maxDelay: 30 },
      user: 'root',
      env: {},
      log: { size: 100_000, keep: 2 },
      stopSignal: 'TERM',
    },
  };
}

/** /etc/acpi/PWRF/00000080: what acpid runs when the power button is pressed. */
export function powerButtonTree(): Tree {
  const src: EntrySource = { kind: 'generated', by: 'kjx power button' };
  const t = newTree();
  addEntry(
    t,
    mk.file(
      '/etc/acpi/PWRF/00000080',
      script('ACPI power button (acpid): power off through runit stage 3', [
        'echo "kjx: power button pressed: powering off" >/dev/console',
        'exec /sbin/poweroff',
      ]),
      src,
      0o755,
    ),
  );
  return t;
}
