# Functions the trace driver and kjx-bpf-ready share (# kjx:include attach.sh):
#   kjx_links PID                      sets kjx_n: the BPF link and perf event fds PID holds
#   kjx_wait_attached PID SECONDS      0: attached, 1: PID died, 2: time is up
#   kjx_wait_line PID FILE TEXT SECONDS  0: FILE has the line TEXT, 1: PID died, 2: time is up
# "Attached": what every BPF tool does once attached is hold BPF link (or perf event)
# fds and go to sleep; so: links present, the process asleep, the count unchanged over
# two polls (libbpf-tools' banners sit in stdio buffers until exit).
# shellcheck shell=sh
#
# @value KJX_TICK  the FIFO nobody writes, for a builtin sleep (made by stage 1; absent on a host)

# one exec per poll (ls), so the tracer sees as little of its own start as it can
kjx_links() {
  kjx_n=0
  # shellcheck disable=SC2045 # the words of ls -l are what is counted: the link targets
  for kjx_l in $(ls -l "/proc/$1/fd" 2>/dev/null); do
    case $kjx_l in anon_inode:bpf_link | anon_inode:bpf-link | 'anon_inode:[perf_event]') kjx_n=$((kjx_n + 1)) ;; esac
  done
}
# a builtin sleep: read with a timeout from the FIFO nobody writes (docs/services.md)
# shellcheck disable=SC2034,SC3045 # busybox ash's read -t; kjx_x only takes what nobody writes
kjx_nap() { if [ -p "$KJX_TICK" ]; then read -r -t 0.1 kjx_x 0<>"$KJX_TICK"; else sleep 0.1; fi; }
kjx_wait_line() {
  kjx_i=0
  while [ "$kjx_i" -lt $(($4 * 10)) ]; do
    kill -0 "$1" 2>/dev/null || return 1
    grep -qxF "$3" "$2" 2>/dev/null && return 0
    kjx_i=$((kjx_i + 1))
    kjx_nap
  done
  return 2
}
kjx_wait_attached() {
  kjx_prev=-1; kjx_i=0
  while [ "$kjx_i" -lt $(($2 * 10)) ]; do
    kill -0 "$1" 2>/dev/null || return 1
    kjx_st=; read -r _ _ kjx_st _ <"/proc/$1/stat" 2>/dev/null
    kjx_links "$1"
    [ "$kjx_st" = S ] && [ "$kjx_n" -gt 0 ] && [ "$kjx_n" = "$kjx_prev" ] && return 0
    kjx_prev=$kjx_n; kjx_i=$((kjx_i + 1))
    kjx_nap
  done
  return 2
}
