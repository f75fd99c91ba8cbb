#!/bin/sh
# kjx trace's driver, run in the guest as `sh -c DRIVER` (kjx run's command, or over SSH
# with --vm): start the tracer, wait until it is attached, run the workload (or sleep),
# stop the tracer, and ship its files home on fd 3, framed (src/trace/guest-scripts.ts);
# everything else goes to stderr. Sent by kjx trace from src/trace/sh/trace-driver.sh.
# Over SSH the whole text is one command, which dropbear takes up to 9000 bytes long:
# kjx sends it without its comments.
# shellcheck disable=SC2317 # cleanup runs from traps
#
# @value KJX_TRACER        the tracer's name, for the results
# @value KJX_VIA           how it traces, for the results
# @value KJX_KIND          process (a BPF tool we run), helper (kjx-ftrace start/stop) or service
# @value KJX_TRACER_ARGV   process: the tool's argv (shell words)
# @value KJX_READY_LINE    process: a line the tool prints once attached; empty: watch its fds
# @value KJX_START_ARGV    helper: the start command (shell words)
# @value KJX_STOP_ARGV     helper: the stop command that prints the results (shell words)
# @value KJX_UNDO_ARGV     helper: the stop command that undoes everything, for an interrupted driver
# @value KJX_SERVICE       service: the tracer service, stopped (sv down) to print its results
# @value KJX_WORKLOAD      the workload's argv (shell words); empty: trace for a while
# @value KJX_DURATION      seconds: the trace's length without a workload, the workload's limit with one; may be empty
# @value KJX_DEFAULT_DURATION  seconds to trace with neither a workload nor a duration
# @value KJX_ATTACH_TIMEOUT    seconds the tracer may take to attach
# @value KJX_STOP_TIMEOUT      seconds it may take to print its results after SIGINT (then SIGKILL)
# @value KJX_KILL_GRACE        seconds between SIGTERM and SIGKILL of a workload past its duration
# @value KJX_FRAME_PREFIX      what the frames on fd 3 start with
# @value KJX_DUMP_MAPS         a tracing.programs loader: kjx-bpf-run, which dumps the maps a process holds; empty: none
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# fd 3 carries the framed results; everything else goes to stderr
exec 3>&1 1>&2
D=$(mktemp -d /tmp/kjx-trace.XXXXXX) || exit 1
# the uptime in $kjx_up: no $(...), whose subshell would be counted by funccount (it reads
# /proc/uptime a byte per read(2)); the driver itself ($$) is left out of the tracefs counts
up() { read -r kjx_up _ </proc/uptime; }
meta() { echo "$1=$2" >>"$D/meta"; }
stamp() { up; meta "$1" "$kjx_up"; }
# kjx_sleep N: a builtin sleep where the FIFO exists (no process for tracers to see, none
# to leave behind when killed); else (a shell without the FIFO, like a host) one second at
# a time, so a killed sleeper leaves at most a 1 s sleep behind: a background sleep whose
# pid a TERM trap kills races with the fork that starts it
# shellcheck disable=SC2034,SC3045 # busybox ash's read -t; kjx_x only takes what nobody writes
kjx_sleep() { if [ -p "$KJX_TICK" ]; then read -r -t "$1" kjx_x 0<>"$KJX_TICK"; else kjx_sleep_chunks "$1"; fi; }
kjx_sleep_chunks() {
  kjx_i=${1%%.*} kjx_f=${1#"${1%%.*}"}
  while [ "${kjx_i:-0}" -gt 0 ]; do sleep 1; kjx_i=$((kjx_i - 1)); done
  [ -z "$kjx_f" ] || sleep "0$kjx_f"
}
emit() {
  [ -f "$D/$1" ] || : >"$D/$1"
  # shellcheck disable=SC2046 # wc's number, its padding split off
  set -- "$1" $(wc -c <"$D/$1")
  echo "${KJX_FRAME_PREFIX}file name=$1 bytes=$2" >&3
  cat "$D/$1" >&3
  echo >&3
}
finish() { stamp t_end; emit out; emit err; [ -f "$D/maps" ] && emit maps; emit meta; echo "${KJX_FRAME_PREFIX}end" >&3; exit 0; }
fail() { meta error "$1"; finish; }
# kjx:include ../../guest/sh/attach.sh
# interrupted (the SSH session of --vm gone, a signal): stop the tracer and the workload and
# undo the tracefs setup, so nothing keeps tracing; on a normal exit only $D is left to remove
tp='' wp='' armed=''
cleanup() {
  trap - EXIT HUP INT TERM PIPE
  [ -n "$wp" ] && { kill -KILL -"$wp" 2>/dev/null || kill -KILL "$wp" 2>/dev/null; }
  [ -n "$tp" ] && kill -KILL "$tp" 2>/dev/null
  if [ -n "$armed" ]; then
    eval "set -- $KJX_UNDO_ARGV"
    "$@" >/dev/null 2>&1 3>&-
  fi
  rm -rf "$D"
}
trap cleanup EXIT
trap 'cleanup; exit 129' HUP
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 141' PIPE
trap 'cleanup; exit 143' TERM
meta tracer "$KJX_TRACER"
meta via "$KJX_VIA"
meta kernel "$(uname -r)"
stamp t_start

# start_process ARGV...
start_process() {
  command -v "$1" >/dev/null || fail "$1 is not in this image"
  "$@" >"$D/out" 2>"$D/err" </dev/null 3>&- &
  tp=$!
  if [ -n "$KJX_READY_LINE" ]; then
    kjx_wait_line "$tp" "$D/out" "$KJX_READY_LINE" "$KJX_ATTACH_TIMEOUT"
  else
    kjx_wait_attached "$tp" "$KJX_ATTACH_TIMEOUT"
  fi
  case $? in
  1) wait "$tp"; meta tracer_status $?; tp=''; fail "$1 exited before it attached" ;;
  2) kill -KILL "$tp"; fail "$1 did not attach within $KJX_ATTACH_TIMEOUT s" ;;
  esac
}
# start_helper ARGV...
start_helper() {
  command -v "$1" >/dev/null || fail "$1 is not in this image (the ftrace component)"
  # armed first: a start that fails half-way leaves probes for cleanup to remove
  armed=1
  KJX_FTRACE_EXCLUDE_PID=$$ "$@" >"$D/start" 2>>"$D/err" 3>&- || { shift; fail "$* failed"; }
}
start_service() {
  [ -d "/etc/service/$KJX_SERVICE" ] || fail "the image has no service $KJX_SERVICE"
  [ -d "/var/log/$KJX_SERVICE" ] ||
    fail "service $KJX_SERVICE has no log directory (log: false sends its output to the console)"
}
case $KJX_KIND in
process) eval "start_process $KJX_TRACER_ARGV" ;;
helper) eval "start_helper $KJX_START_ARGV" ;;
service) start_service ;;
*) fail "unknown tracer kind $KJX_KIND" ;;
esac
stamp t_attached

if [ -n "$KJX_WORKLOAD" ]; then
  eval "set -- $KJX_WORKLOAD"
  meta workload "$*"
  # its own session and process group, so a --duration limit stops all of it; not fd 3
  setsid "$@" </dev/null 3>&- &
  wp=$!
  if [ -n "$KJX_DURATION" ]; then
    # the watchdog: SIGTERM after the duration, SIGKILL a grace later. Its sleeps are
    # builtin, so stopping it early leaves no sleep behind holding stderr (and with it
    # the SSH session of --vm) open
    (
      kjx_sleep "$KJX_DURATION"
      : >"$D/killed"
      kill -TERM -"$wp" 2>/dev/null || kill -TERM "$wp"
      kjx_sleep "$KJX_KILL_GRACE"
      kill -KILL -"$wp" 2>/dev/null || kill -KILL "$wp"
    ) </dev/null >/dev/null 2>&1 3>&- &
    dog=$!
  fi
  wait "$wp" 2>/dev/null
  meta workload_status $?
  wp=''
  if [ -n "$KJX_DURATION" ]; then
    kill "$dog" 2>/dev/null; wait "$dog" 2>/dev/null
    [ -f "$D/killed" ] && meta workload_killed 1
  fi
else
  kjx_sleep "${KJX_DURATION:-$KJX_DEFAULT_DURATION}"
fi
stamp t_workload_end

case $KJX_KIND in
process)
  # a C or Go loader's maps while it still holds them (it prints its own output on stop)
  [ -z "$KJX_DUMP_MAPS" ] || "$KJX_DUMP_MAPS" --dump-maps "$tp" >"$D/maps" 2>>"$D/err" 3>&-
  # SIGINT: libbpf-tools and bpftrace print their results then; SIGKILL after a while
  kill -INT "$tp"
  (
    kjx_sleep "$KJX_STOP_TIMEOUT"
    kill -KILL "$tp"
  ) </dev/null >/dev/null 2>&1 3>&- &
  guard=$!
  wait "$tp"
  meta tracer_status $?
  tp=''
  kill "$guard" 2>/dev/null; wait "$guard" 2>/dev/null
  ;;
helper)
  eval "set -- $KJX_STOP_ARGV"
  "$@" >"$D/out" 2>>"$D/err" 3>&-
  meta tracer_status $?
  armed=''
  ;;
service)
  # a program's maps while its loader holds them (a long log line would be split by svlogd)
  if [ -n "$KJX_DUMP_MAPS" ] && read -r kjx_sp <"/etc/service/$KJX_SERVICE/supervise/pid"; then
    "$KJX_DUMP_MAPS" --dump-maps "$kjx_sp" >"$D/maps" 2>>"$D/err" 3>&-
  fi
  # the stop signal (control/t: INT for libbpf-tools) makes the tracer print its results
  sv down "/etc/service/$KJX_SERVICE"
  read -r kjx_up _ </proc/uptime; kjx_deadline=$((${kjx_up%.*} + 60))
  until case $(sv status "/etc/service/$KJX_SERVICE") in down:*) true ;; *) false ;; esac; do
    read -r kjx_up _ </proc/uptime
    [ "${kjx_up%.*}" -ge $kjx_deadline ] && fail "service $KJX_SERVICE did not stop within 60 s of sv down"
    sleep 0.2
  done
  # svlogd writes what the tracer printed last
  sleep 1
  cat "/var/log/$KJX_SERVICE/current" >"$D/out"
  meta tracer_status 0
  ;;
esac
finish
