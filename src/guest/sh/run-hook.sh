#!/bin/sh
# /usr/lib/kjx/run-hook: `kjx run` adds it at boot time, with the command script; it is
# not part of the image (docs/guest-protocol.md). Boot-ready runs it once every service
# is ready: the command's stdout and stderr go to the virtio-serial ports, then the exit
# marker, then the guest powers off. Written by kjx run from src/guest/sh/run-hook.sh.
# Shell builtins only until the command runs: each exec costs ~40 ms under emulation.
#
# @value KJX_STDOUT_PORT  name of the virtio-serial port for the command's stdout
# @value KJX_STDERR_PORT  name of the port for its stderr
# @value KJX_RUN_CMD      the command script (environment, working directory, exec)
# @value KJX_NONCE_FILE   stage 1's root-only copy of the boot's marker nonce
out=/dev/console
err=/dev/console
found=
for p in /sys/class/virtio-ports/*; do
  # read's status is no guide: it sets name even when the file lacks a final newline
  name=
  read -r name <"$p/name" 2>/dev/null
  case "$name" in
  "$KJX_STDOUT_PORT") out="/dev/${p##*/}"; found=1 ;;
  "$KJX_STDERR_PORT") err="/dev/${p##*/}" ;;
  esac
done
[ -n "$found" ] || echo "kjx: no virtio-serial port $KJX_STDOUT_PORT; is virtio_console loaded?" >&2
# sourced in a subshell rather than run by a new sh: one exec fewer
# shellcheck disable=SC1090 # kjx run writes it (run-hook.ts)
( . "$KJX_RUN_CMD" ) >"$out" 2>"$err" </dev/null
status=$?
read -r up _ </proc/uptime
# the nonce is read only now: the command's subshell above had no copy of it
read -r kjx_nonce 2>/dev/null <"$KJX_NONCE_FILE"
echo "
@@kjx:$kjx_nonce:exit status=$status uptime=$up"
# no sync: a run's initramfs is memory and its medium is attached with snapshot=on
poweroff -f
