#!/bin/sh
# kjx service library, /usr/lib/kjx/sv.sh: sourced by every generated run, finish and
# check script (docs/services.md). Written into images by kjx build from src/guest/sh/sv.sh.
# Under TCG every exec costs ~40 ms and a subshell ~8 ms, and these loops share one vCPU
# with what they wait for: the polling paths use builtins only.
# shellcheck disable=SC3045 # busybox ash has read -t (our builtin sleep)
#
# @value KJX_SV             what runsvdir watches: one link per enabled service
# @value KJX_STATE          kjx's runtime state (tmpfs): ready flags, svc/NAME bookkeeping, the tick FIFO
# @value KJX_NONCE_FILE     stage 1's root-only copy of the boot's marker nonce
# @value KJX_READY_POLL     the readiness poller (ready-poll.sh)
# @value KJX_HEALTHY_AFTER  seconds a service must run to count as healthy (its backoff starts over)

# kjx_now: uptime into $kjx_t (no subshell)
kjx_now() { read -r kjx_t _ </proc/uptime; }

# kjx_sleep SECONDS: a builtin sleep (read times out on a FIFO nobody writes)
kjx_sleep() {
  # shellcheck disable=SC2034 # kjx_x only takes what nobody writes
  if [ -p "$KJX_STATE/tick" ]; then read -r -t "$1" kjx_x <>"$KJX_STATE/tick"; else sleep "$1"; fi
}

# kjx_say "EVENT FIELDS": a console marker with the boot's nonce (docs/guest-protocol.md),
# read from stage 1's root-only copy when first needed (scripts running as a user never print one)
kjx_say() {
  [ -n "$kjx_nonce" ] || read -r kjx_nonce 2>/dev/null <"$KJX_NONCE_FILE"
  echo "
@@kjx:$kjx_nonce:$1" >/dev/console
}

# A service marker: @@kjx:NONCE:service name= state= t=
kjx_marker() { kjx_now; kjx_say "service name=$1 state=$2 t=$kjx_t"; }

# A line in the service's own log (run's and finish's stdout go to svlogd).
kjx_log() { kjx_now; echo "kjx: $* t=$kjx_t"; }

# kjx_rm FILE...: remove the ones that exist (no exec when none does)
kjx_rm() { for kjx_f; do [ ! -e "$kjx_f" ] || rm -f "$kjx_f"; done; }

# Is service $1 ready? Its flag must name a live process.
kjx_is_ready() {
  kjx_p=
  read -r kjx_p 2>/dev/null <"$KJX_STATE/ready/$1" || return 1
  [ -n "$kjx_p" ] && kill -0 "$kjx_p" 2>/dev/null
}

# kjx_set_ready NAME PID: announced first, flagged last, so no dependent can
# start (and say so) before this service's ready line is out
kjx_set_ready() {
  kjx_marker "$1" ready
  kjx_log ready
  echo "$2" >"$KJX_STATE/ready/$1"
}

# kjx_wait_needs NAME DEP...: block until every DEP is ready at the same time.
kjx_wait_needs() {
  shift
  [ $# -gt 0 ] || return 0
  kjx_said=
  while :; do
    kjx_missing=
    for kjx_d; do kjx_is_ready "$kjx_d" || { kjx_missing=$kjx_d; break; }; done
    [ -z "$kjx_missing" ] && break
    if [ "$kjx_said" != "$kjx_missing" ]; then kjx_log "waiting for $kjx_missing"; kjx_said=$kjx_missing; fi
    kjx_sleep 0.1
  done
  kjx_log "ready: $*"
}

# kjx_begin NAME DELAY MAXDELAY DEP...: start of run. Backoff after quick failures,
# then wait for the dependencies; the caller execs the program next.
kjx_begin() {
  kjx_n=$1 kjx_delay=$2 kjx_max=$3
  shift 3
  kjx_dir=$KJX_STATE/svc/$kjx_n
  [ -d "$kjx_dir" ] || mkdir -p "$kjx_dir"
  kjx_rm "$KJX_STATE/ready/$kjx_n" "$kjx_dir/stopped-by" "$kjx_dir/child"
  kjx_fails=0
  read -r kjx_fails 2>/dev/null <"$kjx_dir/fails"
  if [ "${kjx_fails:-0}" -gt 0 ]; then
    kjx_wait=$kjx_delay kjx_i=1
    while [ "$kjx_i" -lt "$kjx_fails" ] && [ "$kjx_wait" -lt "$kjx_max" ]; do
      kjx_wait=$((kjx_wait * 2)) kjx_i=$((kjx_i + 1))
    done
    [ "$kjx_wait" -gt "$kjx_max" ] && kjx_wait=$kjx_max
    kjx_log "failed $kjx_fails time(s) in a row; restarting in $kjx_wait s"
    kjx_sleep "$kjx_wait"
  fi
  kjx_wait_needs "$kjx_n" "$@"
  echo $$ >"$kjx_dir/pid"
  echo $$ >"$kjx_dir/pgid"
  kjx_now
  echo "$kjx_t" >"$kjx_dir/started"
  kjx_log starting
  kjx_marker "$kjx_n" up
}

# kjx_poll_ready NAME KIND ARG: a detached poller marks this service ready when
# KIND (file, port, check) holds, as long as the process ($$, which exec turns
# into the program) lives. Double fork: the program never sees it as a child.
kjx_poll_ready() {
  ( "$KJX_READY_POLL" "$1" $$ "$2" "$3" & )
}

# kjx_port_listening HEXPORT: a TCP socket (v4 or v6) listens on the port (0016 = 22).
kjx_port_listening() {
  for kjx_f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$kjx_f" ] || continue
    while read -r _ kjx_l _ kjx_s _; do
      [ "$kjx_s" = 0A ] && [ "${kjx_l##*:}" = "$1" ] && return 0
    done <"$kjx_f"
  done
  return 1
}

# The wrapper shell of `ready: signal` services: forward stop signals to the
# program, wait for it (one pid, in a loop: a trapped USR1 interrupts wait).
kjx_forward() {
  if [ -n "$kjx_child" ]; then kill -s "$1" "$kjx_child" 2>/dev/null; else exit 143; fi
}
# kjx_wait_child NAME [DIR]: a wrapper running as the service user writes only
# into DIR, its own directory; kjx's files stay root's.
kjx_wait_child() {
  if [ -n "$2" ]; then
    echo "$kjx_child" >"$2/child"
  else
    echo "$kjx_child" >"$KJX_STATE/svc/$1/child"
    echo "$kjx_child" >"$KJX_STATE/svc/$1/pgid"
  fi
  while :; do
    wait "$kjx_child"
    kjx_rc=$?
    kill -0 "$kjx_child" 2>/dev/null || break
  done
  exit "$kjx_rc"
}

# kjx_finish NAME CODE SIGNAL DEPENDENT...: first thing in finish. The service is
# not ready any more; what it left running goes; its dependents are stopped
# (their own finish stops theirs) and wait in their run for it to be ready again.
kjx_finish() {
  kjx_n=$1 kjx_code=$2 kjx_sig=$3
  shift 3
  kjx_dir=$KJX_STATE/svc/$kjx_n
  if read -r kjx_p 2>/dev/null <"$kjx_dir/poller"; then kill -s KILL "$kjx_p" 2>/dev/null; fi
  kjx_rm "$KJX_STATE/ready/$kjx_n" "$kjx_dir/poller"
  # (never group 1 or below: `kill -1` would be everything)
  if read -r kjx_p 2>/dev/null <"$kjx_dir/pgid" && [ "$kjx_p" -gt 1 ] 2>/dev/null; then
    if kill -0 -"$kjx_p" 2>/dev/null; then
      kill -s TERM -"$kjx_p" 2>/dev/null
      kjx_sleep 0.2
      kill -s KILL -"$kjx_p" 2>/dev/null
    fi
    kjx_rm "$kjx_dir/pgid"
  fi
  if [ "$kjx_code" = -1 ]; then kjx_log "stopped by signal $kjx_sig"; else kjx_log "exited $kjx_code"; fi
  kjx_marker "$kjx_n" down
  for kjx_d; do
    [ -d "$KJX_STATE/svc/$kjx_d" ] || mkdir -p "$KJX_STATE/svc/$kjx_d"
    echo "$kjx_n" >"$KJX_STATE/svc/$kjx_d/stopped-by"
    sv term "$KJX_SV/$kjx_d" >/dev/null 2>&1
  done
}

# kjx_restart NAME POLICY CODE: last thing in finish. runsv restarts a service
# unless it is told down; this decides, and counts quick failures for the backoff.
kjx_restart() {
  kjx_dir=$KJX_STATE/svc/$1
  if read -r kjx_by 2>/dev/null <"$kjx_dir/stopped-by"; then
    kjx_rm "$kjx_dir/stopped-by"
    kjx_log "stopped because $kjx_by stopped; starts again once $kjx_by is ready"
    return 0
  fi
  case "$(sv status "$KJX_SV/$1" 2>/dev/null)" in
  *"want down"*)
    echo 0 >"$kjx_dir/fails"
    return 0
    ;;
  esac
  if [ "$2" = never ] || { [ "$2" = on-failure ] && [ "$3" = 0 ]; }; then
    kjx_log "not restarted (restart: $2)"
    sv down "$KJX_SV/$1" >/dev/null 2>&1
    return 0
  fi
  kjx_started=0 kjx_fails=0
  read -r kjx_started 2>/dev/null <"$kjx_dir/started"
  read -r kjx_fails 2>/dev/null <"$kjx_dir/fails"
  kjx_now
  kjx_ran=${kjx_started%.*}
  kjx_ran=$((${kjx_t%.*} - ${kjx_ran:-0}))
  if [ "$kjx_ran" -ge "$KJX_HEALTHY_AFTER" ]; then kjx_fails=1; else kjx_fails=$((${kjx_fails:-0} + 1)); fi
  echo "$kjx_fails" >"$kjx_dir/fails"
}
