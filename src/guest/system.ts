/**
 * The generated guest system as Tree layers: the skeleton, identity, accounts,
 * networking, runit's stages, the service directories and kjx's helper scripts.
 * The build merges `tree` before the packages' files and `overrides` after them
 * (our poweroff, reboot and halt replace busybox's applet links).
 */
import { addEntry, type EntrySource, mergeTrees, mk, newTree, type Tree } from '../rootfs/tree.js';
import type { Spec } from '../spec/schema.js';
import { baseFiles } from './base-files.js';
import { identityTree } from './identity.js';
import { BOOT_READY, READY_POLL, SV_LIB } from './layout.js';
import { networkTree } from './network.js';
import { powerButtonOn, powerButtonTree } from './power-button.js';
import { readyPollScript } from './readiness.js';
import { serviceLib } from './service-lib.js';
import {
  bootReadyTimeout,
  type GuestService,
  guestServices,
  serviceLevels,
  serviceTree,
  superviseDirs,
} from './services.js';
import { DROPBEAR_DIR, givenHostKeyPath } from './ssh.js';
import type { SshInputs } from './ssh-keys.js';
import {
  bootReadyScript,
  ctrlAltDelScript,
  fstab,
  initScript,
  type PowerAction,
  powerScript,
  stage1Script,
  stage2Script,
  stage3Script,
} from './stages.js';
import { usersTree } from './users.js';

export interface GuestSystemInputs {
  spec: Spec;
  buildId: string;
  /** Kernel modules in load order. */
  modules: string[];
  ssh: SshInputs;
}

export interface GuestSystem {
  /** Merged before the packages' files. */
  tree: Tree;
  /** Merged after them; each entry replaces what a package put there. */
  overrides: Tree;
  services: GuestService[];
}

export function guestSystem({ spec, buildId, modules, ssh }: GuestSystemInputs): GuestSystem {
  const src: EntrySource = { kind: 'generated', by: 'kjx runit' };
  const services = guestServices(spec);
  const levels = serviceLevels(services);

  const runit = newTree();
  addEntry(runit, mk.file('/init', initScript(), src, 0o755));
  addEntry(runit, mk.dir('/etc/runit', src));
  addEntry(
    runit,
    mk.file(
      '/etc/runit/1',
      stage1Script({ spec, services: services.map((s) => s.name), superviseDirs: superviseDirs(services) }),
      src,
      0o755,
    ),
  );
  addEntry(runit, mk.file('/etc/runit/2', stage2Script(), src, 0o755));
  addEntry(runit, mk.file('/etc/fstab', fstab(), src, 0o644));
  addEntry(runit, mk.file('/etc/runit/3', stage3Script(levels), src, 0o755));
  addEntry(runit, mk.file('/etc/runit/ctrlaltdel', ctrlAltDelScript(), src, 0o755));
  addEntry(runit, mk.file(SV_LIB, serviceLib(), src, 0o644));
  addEntry(runit, mk.file(READY_POLL, readyPollScript(), src, 0o755));
  addEntry(
    runit,
    mk.file(
      BOOT_READY,
      bootReadyScript({ buildId, services: levels.flat(), timeout: bootReadyTimeout(services) }),
      src,
      0o755,
    ),
  );
  if (spec.ssh.enabled) {
    addEntry(runit, mk.dir(DROPBEAR_DIR, src));
    for (const [i, data] of ssh.hostKeys.entries())
      addEntry(runit, mk.file(givenHostKeyPath(i), data, src, 0o600));
  }

  const overrides = newTree();
  for (const action of ['poweroff', 'reboot', 'halt'] as PowerAction[]) {
    for (const dir of ['/sbin', '/bin'])
      addEntry(overrides, {
        ...mk.file(`${dir}/${action}`, powerScript(action), src, 0o755),
        override: true,
      });
  }

  const tree = mergeTrees([
    baseFiles({ modules }),
    identityTree(spec, buildId),
    usersTree(spec, ssh.authorizedKeys),
    networkTree(),
    ...(powerButtonOn(spec) ? [powerButtonTree()] : []),
    serviceTree(spec, services),
    runit,
  ]);
  return { tree, overrides, services };
}
