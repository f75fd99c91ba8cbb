/**
 * gVisor's runsc from Debian's `runsc`: one static binary, the ptrace platform
 * (no KVM needed; the container sees gVisor's kernel, 4.4.0). Debian ships no
 * containerd-shim-runsc-v1, so with containerd and docker runsc is registered the
 * way their runc shim allows: as the shim's runtime binary (`ctr run
 * --runc-binary`, docker's `runtimes:` in daemon.json).
 */
import { mergeTrees, newTree } from '../rootfs/tree.js';
import type { Spec } from '../spec/schema.js';
import type { Component } from './component.js';
import { CHECK_ROOT, checkEntry } from './container-common.js';
import { dataComponent } from './data.js';
import { lowLevelCheck } from './runc.js';

export const RUNSC = '/usr/bin/runsc';

const has = (spec: Pick<Spec, 'components'>, c: string) => spec.components.includes(c);

export const gvisor: Component = {
  ...dataComponent({
    name: 'gvisor',
    take: [{ package: 'runsc', paths: [RUNSC] }],
    with: [CHECK_ROOT],
    // no network stack for the check; runsc's own root under /run
    generated: () => lowLevelCheck('gvisor', `runsc --root /run/runsc --network=none run --bundle`),
    pivotRoot: true,
    memoryMiB: 1024,
  }),
  // with containerd and docker, runsc runs their containers too
  checks: (spec) => [
    'gvisor',
    ...(has(spec, 'containerd') ? ['gvisor-containerd'] : []),
    ...(has(spec, 'docker') ? ['gvisor-docker'] : []),
  ],
  files: (ctx) =>
    mergeTrees([
      has(ctx.spec, 'containerd')
        ? checkEntry(
            'gvisor-containerd',
            [
              '. /etc/kjx/containerd.env',
              `kjx_expect ctr run --rm --snapshotter "$CONTAINERD_SNAPSHOTTER" --runc-binary ${RUNSC} "$KJX_IMAGE_REF" kjx-check-gvisor-$$ sh -c "$KJX_CMD"`,
            ],
            [
              '. /etc/kjx/containerd.env',
              'kjx_step ctr images import --snapshotter "$CONTAINERD_SNAPSHOTTER" "$KJX_IMAGE"',
            ],
          )
        : newTree(),
      has(ctx.spec, 'docker')
        ? checkEntry(
            'gvisor-docker',
            ['kjx_expect docker run --rm --runtime runsc --network none "$KJX_IMAGE_REF" sh -c "$KJX_CMD"'],
            ['kjx_step docker load -i "$KJX_IMAGE"'],
          )
        : newTree(),
    ]),
};
