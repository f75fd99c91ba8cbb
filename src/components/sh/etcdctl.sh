#!/bin/sh
# /usr/bin/etcdctl: etcdctl with the node's endpoint and client certificate preset
# (docs/cluster.md), so `kjx cluster exec n2 -- etcdctl get k` works without flags.
# Flags and ETCDCTL_* variables given by the caller win.
# Written into images by kjx build from src/components/sh/etcdctl.sh.
#
# @value KJX_ETCD_CONF     the per-boot directory: env, ca.crt, node.crt, node.key
# @value KJX_ETCDCTL_REAL  the etcdctl binary
export ETCDCTL_API="${ETCDCTL_API:-3}"
export ETCDCTL_ENDPOINTS="${ETCDCTL_ENDPOINTS:-https://127.0.0.1:2379}"
export ETCDCTL_CACERT="${ETCDCTL_CACERT:-$KJX_ETCD_CONF/ca.crt}"
export ETCDCTL_CERT="${ETCDCTL_CERT:-$KJX_ETCD_CONF/node.crt}"
export ETCDCTL_KEY="${ETCDCTL_KEY:-$KJX_ETCD_CONF/node.key}"
exec "$KJX_ETCDCTL_REAL" "$@"
