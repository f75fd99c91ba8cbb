#!/bin/sh
# kjx-bpf-ready CMD ARGS...: run a BPF tool (runqlat, offcputime, bpftrace, ...) in the
# foreground and, once it is attached, tell the service supervisor it is ready
# (SIGUSR1 to $KJX_NOTIFY_PID, the `ready: signal` wrapper; and/or touch $KJX_READY_FILE).
# The tool replaces this shell (same pid), so the stop signal reaches it directly: with
# `stopSignal: INT` it prints its results. (A shell started in the background ignores
# INT and cannot trap it; the tools install their own handler.)
# Written into images by kjx build from src/guest/sh/kjx-bpf-ready.sh (docs/tracing.md).
#
# @value KJX_ATTACH_TIMEOUT  seconds a tool may take to attach (BPF verification under TCG takes a few)
# @input KJX_NOTIFY_PID      the `ready: signal` wrapper to send SIGUSR1 (environment)
# @input KJX_READY_FILE      a file to create once attached (environment)
[ $# -gt 0 ] || { echo "usage: kjx-bpf-ready CMD ARGS..." >&2; exit 2; }
# kjx:include attach.sh
kjx_tool=$$
(
  if kjx_wait_attached $kjx_tool "$KJX_ATTACH_TIMEOUT"; then
    echo "kjx-bpf-ready: $1 attached" >&2
    [ -n "$KJX_NOTIFY_PID" ] && kill -USR1 "$KJX_NOTIFY_PID"
    [ -n "$KJX_READY_FILE" ] && : >"$KJX_READY_FILE"
  else
    echo "kjx-bpf-ready: $1 did not attach" >&2
  fi
) </dev/null &
exec "$@"
