#!/bin/sh
# kjx-ftrace: tracefs collectors for kjx trace, installed by the ftrace component
# (docs/tracing.md; Documentation/trace/ftrace.rst, histogram.rst, kprobetrace.rst).
# Written into images by kjx build from src/guest/sh/kjx-ftrace.sh.
# usage: kjx-ftrace start funccount PATTERN | runqlat | syscalls | exec
#        kjx-ftrace stop funccount | runqlat | syscalls | exec [--keep]
# --keep leaves what start set up (a VM about to power off: removing 70 kprobes takes
# seconds under TCG). Everything kjx creates is named kjx*, so stop removes exactly that.
#
# @value KJX_FUNCCOUNT_MAX       at most this many functions per funccount pattern (each is a kprobe)
# @value KJX_EXEC_INSTANCE       the private tracefs instance of exec (its own buffer and tracing_on)
# @input KJX_FTRACE_EXCLUDE_PID  a process whose own reads and writes are not counted (the kjx trace driver)
T=/sys/kernel/tracing
S=/run/kjx/trace/ftrace
[ -d "$T/events" ] || mount -t tracefs nodev "$T" 2>/dev/null
[ -d "$T/events" ] || { echo "kjx-ftrace: tracefs is not mounted at $T" >&2; exit 3; }
mkdir -p "$S"
die() { echo "kjx-ftrace: $*" >&2; exit 2; }
KEEP=
[ "$3" = --keep ] && KEEP=1
# The hist triggers. Removing one takes the text that added it (with a "!"), so the
# filter ($F) is kept in the state directory from start to stop. The helper's own file
# writes and reads (setting up 70 kprobes) are not the workload's, nor are those of
# $KJX_FTRACE_EXCLUDE_PID (the driver reads /proc/uptime a byte per read(2)).
FUNC_TRIGGER='hist:keys=common_pid.execname:vals=hitcount:sort=hitcount.descending:size=4096'
SYS_TRIGGER='hist:keys=common_pid.execname,id.syscall:vals=hitcount:sort=hitcount.descending:size=8192'
# runqlat: wakeup -> switch latency through a synthetic event, a log2 hist of it (usecs);
# the $names are tracefs variables, not the shell's
WAKE_TRIGGER='hist:keys=pid:kjx_ts0=common_timestamp.usecs'
# shellcheck disable=SC2016 # tracefs variables
SWITCH_TRIGGER='hist:keys=next_pid:kjx_lat=common_timestamp.usecs-$kjx_ts0:onmatch(sched.sched_wakeup).kjx_runq_lat($kjx_lat,next_pid)'
LAT_TRIGGER='hist:keys=lat.log2:sort=lat'
# the trigger filter: not the helper, nor the process that asked to be left out (the driver)
filter_new() {
  F='if comm != "kjx-ftrace"'
  case $KJX_FTRACE_EXCLUDE_PID in '' | *[!0-9]*) ;; *) F="$F && common_pid != $KJX_FTRACE_EXCLUDE_PID" ;; esac
  echo "$F" >"$S/filter-$1"
}
filter_of() { F=$(cat "$S/filter-$1" 2>/dev/null) || F='if comm != "kjx-ftrace"'; }
# kjx kprobes left by a run that was interrupted: clear their triggers (an O_TRUNC open
# of a trigger file removes them all), then the probes
probes_clear() {
  [ -d "$T/events/kjx" ] || return 0
  for e in "$T"/events/kjx/*; do
    [ -f "$e/trigger" ] || continue
    : >"$e/trigger" 2>/dev/null
    echo "-:kjx/${e##*/}" >>"$T/kprobe_events" 2>/dev/null
  done
  rm -f "$S/funcs"
}
# append to a tracefs file; a refused write names the file and what the kernel said
tw() { echo "$2" >>"$1" 2>/dev/null || { echo "kjx-ftrace: the kernel refused '$2' in ${1#"$T"/}" >&2; [ -r "$T/error_log" ] && tail -n 3 "$T/error_log" >&2; return 1; }; }

# The Debian cloud kernel has no function profiler (CONFIG_FUNCTION_PROFILER is off):
# funccount counts through kprobes with hist triggers, which also gives the count per
# process. It avoids read loops while kprobes count: ash's read takes a byte per
# read(2), and every one of them would be counted (vfs_read, ksys_read, ...)
funccount_start() {
  [ -n "$1" ] || die "funccount needs a function name or glob (like vfs_read or 'vfs_*')"
  probes_clear
  filter_new funccount
  # the kernel expands the glob against the traceable functions; set_ftrace_filter lists
  # them. What was in it before is put back (names only: a "[module]" suffix is dropped)
  saved=$(grep -v '^#' "$T/set_ftrace_filter" 2>/dev/null | sed 's/ [.*]$//')
  restore() { echo >"$T/set_ftrace_filter"; [ -z "$saved" ] || echo "$saved" >>"$T/set_ftrace_filter" 2>/dev/null; }
  echo "$1" >"$T/set_ftrace_filter" 2>/dev/null || { restore; die "no traceable kernel function matches '$1'"; }
  fns=$(cat "$T/set_ftrace_filter")
  restore
  case $fns in '#'*) die "'$1' selects every function; give a name or a narrower glob" ;; esac
  n=0
  list=
  set -f
  for f in $fns; do
    case $f in '['*) continue ;; esac # a module name after the function
    n=$((n + 1))
    [ $n -gt "$KJX_FUNCCOUNT_MAX" ] && { echo "kjx-ftrace: '$1' matches more than $KJX_FUNCCOUNT_MAX functions; counting the first $KJX_FUNCCOUNT_MAX" >&2; break; }
    echo "p:kjx/fc$n $f" >>"$T/kprobe_events" 2>/dev/null || { echo "kjx-ftrace: cannot probe $f (skipped)" >&2; continue; }
    # a probe without its trigger counts nothing and would be left behind: remove it
    echo "$FUNC_TRIGGER $F" >>"$T/events/kjx/fc$n/trigger" || { echo "-:kjx/fc$n" >>"$T/kprobe_events" 2>/dev/null; continue; }
    list="$list fc$n=$f"
    # stop (and an interrupted driver's cleanup) remove what is listed so far
    echo "$list" >"$S/funcs"
  done
  [ -n "$list" ] || die "no function matching '$1' could be probed"
}

# output: "### functions F1 F2 ...", then their hists in that order (one cat)
funccount_stop() {
  [ -f "$S/funcs" ] || return 0
  list=$(cat "$S/funcs")
  set -f
  names=
  set --
  for x in $list; do
    names="$names ${x#*=}"
    set -- "$@" "$T/events/kjx/${x%%=*}/hist"
  done
  echo "### functions$names"
  cat "$@"
  [ -n "$KEEP" ] && return 0
  filter_of funccount
  for x in $list; do echo "!$FUNC_TRIGGER $F" >>"$T/events/kjx/${x%%=*}/trigger"; done
  for x in $list; do echo "-:kjx/${x%%=*}" >>"$T/kprobe_events"; done
  rm -f "$S/funcs" "$S/filter-funccount"
}

runqlat_start() {
  tw "$T/synthetic_events" 'kjx_runq_lat u64 lat; pid_t pid' || exit 2
  tw "$T/events/sched/sched_wakeup/trigger" "$WAKE_TRIGGER" || { runqlat_stop >/dev/null; exit 2; }
  tw "$T/events/sched/sched_switch/trigger" "$SWITCH_TRIGGER" || { runqlat_stop >/dev/null; exit 2; }
  tw "$T/events/synthetic/kjx_runq_lat/trigger" "$LAT_TRIGGER" || { runqlat_stop >/dev/null; exit 2; }
  : >"$S/runqlat"
}

runqlat_stop() {
  [ -r "$T/events/synthetic/kjx_runq_lat/hist" ] && cat "$T/events/synthetic/kjx_runq_lat/hist"
  [ -n "$KEEP" ] && return 0
  # undo in reverse: the synthetic event can go only when nothing refers to it
  echo "!$LAT_TRIGGER" >>"$T/events/synthetic/kjx_runq_lat/trigger" 2>/dev/null
  echo "!$SWITCH_TRIGGER" >>"$T/events/sched/sched_switch/trigger" 2>/dev/null
  echo "!$WAKE_TRIGGER" >>"$T/events/sched/sched_wakeup/trigger" 2>/dev/null
  echo '!kjx_runq_lat' >>"$T/synthetic_events" 2>/dev/null
  rm -f "$S/runqlat"
}

syscalls_start() {
  filter_new syscalls
  tw "$T/events/raw_syscalls/sys_enter/trigger" "$SYS_TRIGGER $F" || exit 2
}

syscalls_stop() {
  cat "$T/events/raw_syscalls/sys_enter/hist"
  [ -n "$KEEP" ] && return 0
  filter_of syscalls
  echo "!$SYS_TRIGGER $F" >>"$T/events/raw_syscalls/sys_enter/trigger" 2>/dev/null
  rm -f "$S/filter-syscalls"
}

# exec traces into a private instance: its own buffer and tracing_on, so the global
# trace buffer and tracing_on (someone else's) are left alone, whatever happens
I=$T/instances/$KJX_EXEC_INSTANCE
exec_start() {
  [ -d "$I" ] || mkdir "$I" 2>/dev/null || die "cannot create the tracefs instance $I"
  echo 0 >"$I/tracing_on"
  : >"$I/trace"
  echo 1 >"$I/events/sched/sched_process_exec/enable" || { rmdir "$I" 2>/dev/null; exit 2; }
  echo 1 >"$I/tracing_on"
}

exec_stop() {
  [ -d "$I" ] || return 0
  echo 0 >"$I/events/sched/sched_process_exec/enable"
  cat "$I/trace"
  [ -n "$KEEP" ] && return 0
  rmdir "$I"
}

case "$1:$2" in
  start:funccount) funccount_start "$3" ;;
  start:runqlat) runqlat_start ;;
  start:syscalls) syscalls_start ;;
  start:exec) exec_start ;;
  stop:funccount) funccount_stop ;;
  stop:runqlat) runqlat_stop ;;
  stop:syscalls) syscalls_stop ;;
  stop:exec) exec_stop ;;
  *) die "usage: kjx-ftrace start|stop funccount [PATTERN]|runqlat|syscalls|exec" ;;
esac
