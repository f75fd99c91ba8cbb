#!/bin/sh
# /usr/lib/kjx/etcd-run: the etcd service's program (docs/cluster.md). etcd reads its
# settings from ETCD_* variables; a kjx cluster node gets them, with its certificates,
# in its per-boot payload (KJX_ETCD_CONF/env). An image booted outside a cluster has
# none: the service says so and exits (runit retries it, slower each time).
# Written into images by kjx build from src/components/sh/etcd-run.sh.
#
# @value KJX_ETCD_CONF  the per-boot directory: env, ca.crt, node.crt, node.key
# @value KJX_ETCD_DATA  etcd's data directory (in RAM: a node that restarts rejoins empty)
if [ ! -r "$KJX_ETCD_CONF/env" ]; then
  echo "etcd: $KJX_ETCD_CONF/env is missing: this image runs etcd as a member of a kjx cluster (kjx cluster up)" >&2
  exit 1
fi
mkdir -p "$KJX_ETCD_DATA"
chmod 700 "$KJX_ETCD_DATA"
set -a
# shellcheck source=/dev/null # made per boot by kjx cluster
. "$KJX_ETCD_CONF/env"
set +a
export ETCD_DATA_DIR="$KJX_ETCD_DATA"
exec etcd
