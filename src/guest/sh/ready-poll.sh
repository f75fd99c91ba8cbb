#!/bin/sh
# /usr/lib/kjx/ready-poll NAME PID KIND ARG: marks service NAME ready once KIND holds
# (file: ARG exists; port: a TCP socket listens on ARG, four hex digits; check: the
# command ARG succeeds), as long as PID lives (docs/services.md). kjx_poll_ready of the
# service library starts it, detached. Written into images by kjx build from
# src/guest/sh/ready-poll.sh.
# shellcheck source-path=SCRIPTDIR
#
# @value KJX_SV_LIB  the service library (sv.sh)
# @input KJX_STATE   from the service library

# shellcheck source=sv.sh
. "$KJX_SV_LIB"
n=$1 pid=$2 kind=$3 arg=$4
echo $$ >"$KJX_STATE/svc/$n/poller"
# file and port are builtins only: every 0.05 s for the first 2 s (a service is mostly
# ready within them, and a boot waits for the last one), then every 0.2 s; a check
# runs a command, every 0.2 s
kjx_fast=0
[ "$kind" = check ] || kjx_fast=40
while kill -0 "$pid" 2>/dev/null; do
  case $kind in
  file) [ -e "$arg" ] && break ;;
  port) kjx_port_listening "$arg" && break ;;
  check) /bin/sh -c "$arg" </dev/null >/dev/null 2>&1 && break ;;
  esac
  if [ "$kjx_fast" -gt 0 ]; then
    kjx_fast=$((kjx_fast - 1))
    kjx_sleep 0.05
  else
    kjx_sleep 0.2
  fi
done
kill -0 "$pid" 2>/dev/null && kjx_set_ready "$n" "$pid"
rm -f "$KJX_STATE/svc/$n/poller"
