#!/bin/sh
# runit stage 3, /etc/runit/3: stop the services in reverse dependency order, level by
# level, each level bounded (sv force-stop kills what is not down in time); then end
# runsv and svlogd (logs flushed), end what is left, sync and unmount. runit halts or
# reboots after it. Written into images by kjx build from src/guest/sh/stage3.sh.
#
# @value KJX_PATH     PATH of every generated script
# @value KJX_REBOOT   runit's reboot flag: mode 100 means reboot, else power off
# @value KJX_SV       what runsvdir watches: one link per enabled service
# @value KJX_LEVELS   the services by level, last started first: one line per level,
#                     names (plain words) that stop together
exec 2>&1
export PATH="$KJX_PATH"
action=poweroff
[ "$(stat -c %a "$KJX_REBOOT" 2>/dev/null)" = 100 ] && action=reboot
echo "kjx: stage 3: stopping services ($action)"
while read -r kjx_level; do
  set --
  for kjx_s in $kjx_level; do set -- "$@" "$KJX_SV/$kjx_s"; done
  [ $# -eq 0 ] || sv -w 5 force-stop "$@" >/dev/null 2>&1
done <<EOF_LEVELS
$KJX_LEVELS
EOF_LEVELS
sv exit "$KJX_SV"/* >/dev/null 2>&1
usleep 200000
kill -s TERM -1 2>/dev/null
usleep 300000
kill -s KILL -1 2>/dev/null
sync
umount -a -r 2>/dev/null
sync
echo "kjx: $action"
