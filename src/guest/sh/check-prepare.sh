#!/bin/sh
# What `kjx test` adds to the run hook (docs/containers.md, "Preparations"): before the
# hook waits at ready, each asked-for check's preparation (a check image to load) runs
# once, so a snapshot saved while the hook waits holds its result and a run restored
# from it goes straight to the checks. A preparation that succeeded is marked in
# KJX_CHECK_PREPARED, the mark saying when it ran (guest uptime); one that failed is not, and the runner (check-runner.sh) runs it
# again inside its check, where its output and status are reported. The run hook
# sources it in a subshell. Written by kjx test from src/guest/sh/check-prepare.sh.
#
# @value KJX_CHECK_PREP_DIR  where the preparations are
# @value KJX_CHECK_PREPARED  where the ones that succeeded are marked
# @value KJX_CHECK_TIMEOUT   seconds one preparation may take (then it is killed)
# @value KJX_PREPARE         the checks whose preparations run, separated by spaces
mkdir -p "$KJX_CHECK_PREPARED"
for c in $KJX_PREPARE; do
  read -r t0 _ </proc/uptime
  if timeout -s KILL "$KJX_CHECK_TIMEOUT" "$KJX_CHECK_PREP_DIR/$c" </dev/null >"$KJX_CHECK_PREPARED/$c.log" 2>&1; then
    read -r t1 _ </proc/uptime
    echo "t0=$t0 t1=$t1" >"$KJX_CHECK_PREPARED/$c"
  fi
done
