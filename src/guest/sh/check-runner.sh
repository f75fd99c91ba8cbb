#!/bin/sh
# kjx test's runner: `sh -c RUNNER kjx-test CHECK...` in a VM booted by kjx run's
# machinery (docs/containers.md). Each check runs under `timeout`, so one hung runtime
# does not take the others' results with it; for each it prints (read by checks.ts):
#   @@check begin name=NAME
#   | every line the check printed (stdout and stderr)
#   @@check end name=NAME status=N t0=UPTIME t1=UPTIME
# A check with a preparation (KJX_CHECK_PREP_DIR/NAME: a check image to load) that the
# run hook already ran before ready (check-prepare.sh) goes straight to the check;
# otherwise the preparation runs first, inside the check's time, and its failure is
# the check's. Sent by kjx test from src/guest/sh/check-runner.sh.
#
# @value KJX_CHECK_DIR       where the checks are
# @value KJX_CHECK_PREP_DIR  where their preparations are
# @value KJX_CHECK_PREPARED  where the run hook marks the preparations it ran
# @value KJX_CHECK_TIMEOUT   seconds one check may take (then it is killed: status 137)
# @value KJX_CHECK_PREFIX    what the runner's lines start with
# @value KJX_CHECK_OUT       where a check's output is kept until it is printed
for c in "$@"; do
  read -r t0 _ </proc/uptime
  echo "$KJX_CHECK_PREFIX begin name=$c"
  rc=0
  if [ -e "$KJX_CHECK_PREPARED/$c" ]; then
    when=
    read -r when <"$KJX_CHECK_PREPARED/$c"
    echo "kjx-test: prepared before ready ($when)" >"$KJX_CHECK_OUT"
  elif [ -x "$KJX_CHECK_PREP_DIR/$c" ]; then
    timeout -s KILL "$KJX_CHECK_TIMEOUT" "$KJX_CHECK_PREP_DIR/$c" </dev/null >"$KJX_CHECK_OUT" 2>&1
    rc=$?
  else
    : >"$KJX_CHECK_OUT"
  fi
  if [ "$rc" = 0 ]; then
    timeout -s KILL "$KJX_CHECK_TIMEOUT" "$KJX_CHECK_DIR/$c" </dev/null >>"$KJX_CHECK_OUT" 2>&1
    rc=$?
  fi
  read -r t1 _ </proc/uptime
  # a last line without a newline is read (status 1) but still printed
  while IFS= read -r l || [ -n "$l" ]; do printf '| %s\n' "$l"; done <"$KJX_CHECK_OUT"
  echo "$KJX_CHECK_PREFIX end name=$c status=$rc t0=$t0 t1=$t1"
done
