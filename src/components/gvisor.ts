/**
 * gVisor's runsc from Debian's `runsc`: one static binary, the ptrace platform
 * (no KVM needed; the container sees gVisor's kernel, 4.4.0). Debian ships no
 * containerd-shim-runsc-v1, so with containerd and docker runsc is registered the
 * way their runc shim allows: as the shim's runtime binary (`ctr run
 * --runc-binary`, docker's `runtimes:` in daemon.json).
 */
import { mergeTrees, newTree } from '../rootfs/tree.js';
import { type Component, takeFiles } from './component.js';
import { CHECK_BUSYBOX_PACKAGE, checkEntry, checkRootfs } from './container-common.js';
import { lowLevelCheck } from './runc.js';

export const RUNSC = '/usr/bin/runsc';

export const gvisor: Component = {
  name: 'gvisor',
  packages: () => ['runsc', CHECK_BUSYBOX_PACKAGE],
  assemble: (ctx) =>
    mergeTrees([
      takeFiles('runsc', ctx.staged('runsc'), [RUNSC]),
      checkRootfs(ctx),
      // no network stack for the check; runsc's own root under /run
      lowLevelCheck('gvisor', `runsc --root /run/runsc --network=none run --bundle`),
    ]),
  files: (ctx) => {
    const has = (c: string) => (ctx.spec.components as string[]).includes(c);
    return mergeTrees([
      has('containerd')
        ? checkEntry('gvisor-containerd', [
            '. /etc/kjx/containerd.env',
            'kjx_step ctr images import --snapshotter "$CONTAINERD_SNAPSHOTTER" "$KJX_IMAGE"',
            `kjx_expect ctr run --rm --snapshotter "$CONTAINERD_SNAPSHOTTER" --runc-binary ${RUNSC} "$KJX_IMAGE_REF" kjx-check-gvisor-$$ sh -c "$KJX_CMD"`,
          ])
        : newTree(),
      has('docker')
        ? checkEntry('gvisor-docker', [
            'kjx_step docker load -i "$KJX_IMAGE"',
            'kjx_expect docker run --rm --runtime runsc --network none "$KJX_IMAGE_REF" sh -c "$KJX_CMD"',
          ])
        : newTree(),
    ]);
  },
  pivotRoot: true,
  memoryMiB: 1024,
};
