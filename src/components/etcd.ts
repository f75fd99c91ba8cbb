/**
 * etcd from Debian's etcd-server and etcd-client (3.4): the server as a service, and
 * `etcdctl` as a wrapper with the node's endpoint and client certificate preset. The
 * member settings (name, peers, URLs) and the certificates are no part of the image:
 * `kjx cluster up` hands them to each node per boot (src/cluster/engines.ts,
 * docs/cluster.md), so one image serves every member. The data directory is in RAM:
 * a member that restarts rejoins empty and catches up from the others.
 */

import { readShFile, renderSh } from '../guest/sh-file.js';
import {
  addEntry,
  type EntrySource,
  ensureParents,
  mergeTrees,
  mk,
  newTree,
  type Tree,
} from '../rootfs/tree.js';
import { DEFAULT_READY_TIMEOUT } from '../spec/values.js';
import type { Component } from './component.js';
import { dataComponent } from './data.js';

/** Where a node's per-boot etcd settings and certificates are (the cluster payload writes them). */
export const ETCD_CONF = '/etc/kjx/etcd';
export const ETCD_RUN = '/usr/lib/kjx/etcd-run';
const ETCDCTL = '/usr/bin/etcdctl';
const ETCDCTL_REAL = '/usr/lib/kjx/etcdctl.bin';
const SRC: EntrySource = { kind: 'generated', by: 'kjx etcd' };

function scripts(): Tree {
  const t = newTree();
  const run = renderSh(readShFile(new URL('./sh/etcd-run.sh', import.meta.url)), {
    KJX_ETCD_CONF: ETCD_CONF,
    KJX_ETCD_DATA: '/var/lib/etcd',
  });
  const ctl = renderSh(readShFile(new URL('./sh/etcdctl.sh', import.meta.url)), {
    KJX_ETCD_CONF: ETCD_CONF,
    KJX_ETCDCTL_REAL: ETCDCTL_REAL,
  });
  addEntry(t, mk.file(ETCD_RUN, run, SRC, 0o755));
  addEntry(t, mk.file(ETCDCTL, ctl, SRC, 0o755));
  ensureParents(t, SRC);
  return t;
}

const base = dataComponent({
  name: 'etcd',
  take: [
    { package: 'etcd-server', paths: ['/usr/bin/etcd'] },
    { package: 'etcd-client', paths: [ETCDCTL] },
  ],
  services: [
    {
      name: 'etcd',
      spec: {
        run: ETCD_RUN,
        needs: [],
        // ready once started: a member is healthy only with a quorum, which the
        // host waits for (kjx cluster up), not each node's boot
        ready: { kind: 'started', timeout: DEFAULT_READY_TIMEOUT },
        restart: { policy: 'always', delay: 1, maxDelay: 30 },
        user: 'root',
        env: {},
        log: { size: 1_000_000, keep: 2 },
        stopSignal: 'TERM',
      },
    },
  ],
  memoryMiB: 384,
});

/** The taken etcdctl moves aside for the wrapper that presets its flags. */
export const etcd: Component = {
  ...base,
  assemble: (ctx) => {
    const taken = base.assemble(ctx);
    const bin = taken.get(ETCDCTL);
    if (bin) {
      taken.delete(ETCDCTL);
      taken.set(ETCDCTL_REAL, { ...bin, path: ETCDCTL_REAL });
    }
    return mergeTrees([taken, scripts()]);
  },
};
