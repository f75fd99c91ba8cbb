#!/bin/sh
# runit stage 1, /etc/runit/1: bring the system up (docs/services.md). This file is its
# fixed part: mounts, runit's flags, kjx's state, the boot's nonce, hostname, banner,
# kernel modules and what a `kjx run` VM leaves out. kjx build writes the rest after
# it, from kjx.yaml: sysctls, network, the components' lines, the boot tasks (kjx_task
# calls), `exit 0`. Written into images from src/guest/sh/stage1.sh.
#
# @value KJX_PATH        PATH of every generated script
# @value KJX_STOPIT      runit's stop flag (mode 100 and a SIGCONT to PID 1: stop)
# @value KJX_REBOOT      runit's reboot flag (mode 100: reboot rather than power off)
# @value KJX_STATE       kjx's runtime state (tmpfs), with the tick FIFO of the builtin sleep
# @value KJX_STATE_DIRS  directories to make in tmpfs: ready flags, each service's, runsv's (plain words)
# @value KJX_NONCE_RAW   the boot's marker nonce in fw_cfg, readable by root only
# @value KJX_NONCE_FILE  the root-only copy of the nonce for later scripts
# @value KJX_RUN_CPIO    the `kjx run` payload over fw_cfg (boots from a medium)
# @value KJX_RUN_HOOK    the `kjx run` hook: when it is there, this is an ephemeral run VM
# @value KJX_RUN_SKIP    services a run VM does not start: nothing could reach them (plain words)
# @value KJX_SV          what runsvdir watches: one link per enabled service
export PATH="$KJX_PATH"
export HOME=/root TERM=linux
umask 022
kjx_mounted() { while read -r _ kjx_m _; do [ "$kjx_m" = "$1" ] && return 0; done </proc/mounts; return 1; }
# kjx_task NAME REQUIRED COMMAND: a boot task; a failed required one ends the boot
kjx_task() {
  echo "kjx: task $1"
  /bin/sh -c "$3" </dev/null
  kjx_rc=$?
  echo "
@@kjx:$kjx_nonce:task name=$1 status=$kjx_rc"
  [ "$kjx_rc" = 0 ] && return 0
  if [ "$2" = 1 ]; then
    echo "kjx: boot task $1 failed with status $kjx_rc; stopping the boot (stage 3, power off)"
    exit 100
  fi
  echo "kjx: warning: boot task $1 failed with status $kjx_rc (not required, going on)"
}
mount -t proc -o nosuid,nodev,noexec proc /proc
kjx_mounted /sys || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
kjx_mounted /dev ||
  mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev || echo "kjx: devtmpfs unavailable, using the static /dev"
mkdir -p /dev/pts /dev/shm
mount -a 2>&1 | while read -r l; do echo "kjx: warning: $l"; done
# runit acts on these when PID 1 gets SIGCONT and they are mode 100
# (made mode 000 by the umask: shell builtins only, each exec costs ~40 ms under TCG)
(umask 777 && : >"$KJX_STOPIT" && : >"$KJX_REBOOT")
# shellcheck disable=SC2086 # plain words, one directory each
mkdir -p $KJX_STATE_DIRS
# the builtin sleep of the service library reads from this FIFO, which nobody writes
mkfifo -m 600 "$KJX_STATE/tick"
# the boot's nonce for the markers of later scripts: a root-only copy (fw_cfg is readable by
# root only, and /init loaded its driver); never exported, so no child process inherits it
kjx_nonce=
read -r kjx_nonce 2>/dev/null <"$KJX_NONCE_RAW"
umask 077; echo "$kjx_nonce" >"$KJX_NONCE_FILE"; umask 022
while IFS= read -r l; do printf '%s\n' "$l"; done </etc/kjx/banner
# modules in closure order, one modprobe for all; on failure, one by one to name the culprits
# shellcheck disable=SC2046 # one module name per line: the words are the names
if [ -s /etc/kjx/modules ] && ! modprobe -a $(cat /etc/kjx/modules) 2>/dev/null; then
  failed=""
  while read -r m; do
    [ -n "$m" ] || continue
    modprobe "$m" || failed="$failed $m"
  done </etc/kjx/modules
  [ -z "$failed" ] || echo "kjx: failed to load kernel modules:$failed" >&2
fi
# the image has no /sbin/modprobe, so the kernel's requests during early boot fail at once
# instead of starting a process each under emulation; from here on it autoloads through ours
echo /bin/modprobe >/proc/sys/kernel/modprobe
# `kjx run` adds its hook at boot time, over fw_cfg (docs/guest-protocol.md)
# (a cluster node gets its hostname, /etc/hosts and LAN address the same way: docs/cluster.md)
[ -r "$KJX_RUN_CPIO" ] && (cd / && cpio -idmu <"$KJX_RUN_CPIO" 2>/dev/null)
read -r kjx_h </etc/hostname && echo "$kjx_h" >/proc/sys/kernel/hostname
# a cluster node's LAN: "MAC ADDRESS/PREFIX" for the NIC with that MAC (its driver may
# register it a moment after the module loaded)
if [ -r /etc/kjx/lan ] && read -r kjx_mac kjx_addr </etc/kjx/lan; then
  kjx_lan=
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    for kjx_d in /sys/class/net/*; do
      kjx_a=
      read -r kjx_a <"$kjx_d/address" 2>/dev/null
      [ "$kjx_a" = "$kjx_mac" ] && kjx_lan=${kjx_d##*/}
    done
    [ -n "$kjx_lan" ] && break
    usleep 100000
  done
  if [ -n "$kjx_lan" ] && ip link set "$kjx_lan" up && ip -4 addr add "$kjx_addr" dev "$kjx_lan"; then
    echo "kjx: cluster LAN $kjx_lan $kjx_addr"
  else
    echo "kjx: warning: no cluster LAN: no network interface with MAC $kjx_mac"
  fi
fi
# an ephemeral run VM: nothing can reach the interactive built-ins, so they do not start
if [ -n "$KJX_RUN_SKIP" ] && [ -x "$KJX_RUN_HOOK" ]; then
  set --
  for kjx_s in $KJX_RUN_SKIP; do set -- "$@" "$KJX_SV/$kjx_s"; done
  rm -f "$@"
fi
