/**
 * Docker 20.10 from Debian's `docker.io`: dockerd and the docker CLI, supervised
 * as the built-in service `docker` (ready when `docker info` answers), on top of
 * the `containerd` service (COMPONENT_REQUIRES), so dockerd does not start a
 * containerd of its own. Settings in /etc/docker/daemon.json: the storage driver
 * (overlay2 when the kernel has overlay, vfs otherwise), the bridge network
 * (docker0 with iptables-nft, the default; `--network none` needs none of it),
 * and runsc as a runtime when the gvisor component is there.
 */
import type { GuestService } from '../guest/services.js';
import { addEntry, type EntrySource, mergeTrees, mk, newTree, type Tree } from '../rootfs/tree.js';
import { DEFAULT_READY_TIMEOUT } from '../spec/values.js';
import { type Component, type GuestContext, kernelHas } from './component.js';
import {
  BRIDGE_STAGE1,
  bridgeModules,
  CHECK_ROOT,
  checkEntry,
  checkImage,
  IPTABLES,
} from './container-common.js';
import { CONTAINERD_SOCKET } from './containerd.js';
import { dataComponent } from './data.js';
import { RUNSC } from './gvisor.js';

const SRC: EntrySource = { kind: 'generated', by: 'kjx docker' };

/** What /sys/module/apparmor/parameters/enabled shows dockerd (see DOCKER_STAGE1). */
export const APPARMOR_OFF = '/etc/kjx/apparmor-off';

/**
 * Debian's kernels have AppArmor on, and dockerd then insists on loading its
 * docker-default profile with apparmor_parser, which the image does not have (and
 * would take seconds per container under TCG). No profile is loaded in a kjx
 * guest anyway, so AppArmor's "enabled" flag reads N, as with `apparmor=0`.
 */
export const DOCKER_STAGE1 = [
  `[ -e /sys/module/apparmor/parameters/enabled ] && mount --bind ${APPARMOR_OFF} /sys/module/apparmor/parameters/enabled`,
];

export function dockerDaemonJson(o: { overlay: boolean; runsc: boolean }): string {
  const cfg: Record<string, unknown> = {
    containerd: CONTAINERD_SOCKET,
    'storage-driver': o.overlay ? 'overlay2' : 'vfs',
    'log-level': 'warn',
    // no docker-proxy processes for published ports: iptables DNAT does it
    'userland-proxy': false,
  };
  if (o.runsc) cfg.runtimes = { runsc: { path: RUNSC } };
  return `${JSON.stringify(cfg, null, 2)}\n`;
}

export function dockerService(): GuestService {
  return {
    name: 'docker',
    spec: {
      run: 'dockerd --config-file /etc/docker/daemon.json',
      needs: ['containerd'],
      // no docker CLI start (a 40 MB Go binary, slow under TCG) before the socket exists
      ready: {
        kind: 'check',
        command: '[ -S /run/docker.sock ] && docker info',
        timeout: DEFAULT_READY_TIMEOUT * 2,
      },
      restart: { policy: 'always', delay: 1, maxDelay: 30 },
      user: 'root',
      env: {},
      log: { size: 1_000_000, keep: 2 },
      stopSignal: 'TERM',
    },
  };
}

function dockerFiles(ctx: GuestContext): Tree {
  const overlay = kernelHas(ctx, 'overlay');
  const runsc = ctx.spec.components.includes('gvisor');
  const t = newTree();
  addEntry(t, mk.file('/etc/docker/daemon.json', dockerDaemonJson({ overlay, runsc }), SRC));
  addEntry(t, mk.file(APPARMOR_OFF, 'N\n', SRC));
  return mergeTrees([
    t,
    checkImage(ctx),
    checkEntry(
      'docker',
      ['kjx_expect docker run --rm --network none "$KJX_IMAGE_REF" sh -c "$KJX_CMD"'],
      ['kjx_step docker load -q -i "$KJX_IMAGE"'],
    ),
    // bridge: an address on docker0's network, and the guest's end of it answers
    checkEntry(
      'docker-bridge',
      [
        'kjx_expect docker run --rm "$KJX_IMAGE_REF" sh -c "ip -4 addr show eth0 | grep inet && ping -c 1 -W 5 172.17.0.1 && $KJX_CMD"',
      ],
      ['kjx_step docker load -q -i "$KJX_IMAGE"'],
    ),
  ]);
}

export const docker: Component = {
  ...dataComponent({
    name: 'docker',
    take: [{ package: 'docker.io', paths: ['/usr/sbin/dockerd', '/usr/bin/docker'] }],
    with: [IPTABLES, CHECK_ROOT],
    modules: [{ name: 'overlay', optional: true }, ...bridgeModules()],
    services: [dockerService()],
    stage1: [...BRIDGE_STAGE1, ...DOCKER_STAGE1],
    checks: ['docker', 'docker-bridge'],
    requires: ['containerd', 'runc'],
  }),
  files: dockerFiles,
  pivotRoot: true,
  memoryMiB: 2048,
};
