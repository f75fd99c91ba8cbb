/**
 * The generated guest system as Tree layers: the skeleton, identity, accounts,
 * networking, runit's stages, the service directories and kjx's helper scripts.
 * The build merges `tree` before the packages' files and `overrides` after them
 * (our poweroff, reboot and halt replace busybox's applet links).
 */
import { addEntry, type EntrySource, mergeTrees, mk, newTree, type Tree } from '../rootfs/tree.js';
import type { Spec } from '../spec/schema.js';
import { ACPID_SERVICE, CONSOLE_SERVICE, SSH_SERVICE } from '../spec/values.js';
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
  withBefore,
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
  /** What components add: services, stage-1 lines, a pivotable root (the plan merged them; their files merge in the write stage). */
  components?: { services: GuestService[]; stage1: string[]; pivotRoot: boolean };
}

export interface GuestSystem {
  /** Merged before the packages' files. */
  tree: Tree;
  /** Merged after them; each entry replaces what a package put there. */
  overrides: Tree;
  services: GuestService[];
}

/** The console shell, the power button and SSH, unless another service needs them (directly or not). */
export function interactiveBuiltins(services: GuestService[]): string[] {
  const builtin = [CONSOLE_SERVICE, ACPID_SERVICE, SSH_SERVICE];
  const byName = new Map(services.map((s) => [s.name, s]));
  const needed = new Set<string>();
  const visit = (name: string): void => {
    for (const dep of byName.get(name)?.spec.needs ?? []) {
      if (needed.has(dep)) continue;
      needed.add(dep);
      visit(dep);
    }
  };
  for (const s of services) if (!builtin.includes(s.name)) visit(s.name);
  return builtin.filter((n) => byName.has(n) && !needed.has(n));
}

export function guestSystem({ spec, buildId, modules, ssh, components }: GuestSystemInputs): GuestSystem {
  const src: EntrySource = { kind: 'generated', by: 'kjx runit' };
  const services = withBefore([...guestServices(spec), ...(components?.services ?? [])]);
  const levels = serviceLevels(services);

  const runit = newTree();
  addEntry(runit, mk.file('/init', initScript({ pivotRoot: components?.pivotRoot ?? false }), src, 0o755));
  addEntry(runit, mk.dir('/etc/runit', src));
  addEntry(
    runit,
    mk.file(
      '/etc/runit/1',
      stage1Script({
        spec,
        services: services.map((s) => s.name),
        superviseDirs: superviseDirs(services),
        interactive: interactiveBuiltins(services),
        ...(components && components.stage1.length > 0 ? { extra: components.stage1 } : {}),
      }),
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
