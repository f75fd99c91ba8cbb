#!/bin/sh
# /usr/lib/kjx/run-hook: `kjx run` adds it at boot time; it is not part of the image
# (docs/guest-protocol.md). Boot-ready runs it once every service is ready. It waits for
# the run's request on the virtio-serial port kjx.cmd: one line "kjx-run 1 NONCE EPOCH
# SEED LENGTH", then LENGTH bytes of a cpio archive (the command script, the files
# copied in), and the end of the stream. A VM saved as a snapshot is saved while it waits here, so a cold run and
# a restored one get their command the same way, after ready (docs/boot-time.md). Then
# the command's stdout and stderr go to the ports, the exit marker follows, and the
# guest powers off. Written by kjx run from src/guest/sh/run-hook.sh.
# Shell builtins only where it can: each exec costs ~40 ms under emulation.
#
# @value KJX_STDOUT_PORT  name of the virtio-serial port for the command's stdout
# @value KJX_STDERR_PORT  name of the port for its stderr
# @value KJX_CMD_PORT     name of the port the request arrives on
# @value KJX_RUN_CMD      the command script (environment, working directory, exec)
# @value KJX_NONCE_FILE   stage 1's root-only copy of the boot's marker nonce
# @value KJX_RESEED       the helper that reseeds the kernel's random generator and sets the clock
# @value KJX_PREPARE      kjx test's check preparations, when it has any (check-prepare.sh)
out=/dev/console
err=/dev/console
cmd=
for p in /sys/class/virtio-ports/*; do
  # read's status is no guide: it sets name even when the file lacks a final newline
  name=
  read -r name <"$p/name" 2>/dev/null
  case "$name" in
  "$KJX_STDOUT_PORT") out="/dev/${p##*/}" ;;
  "$KJX_STDERR_PORT") err="/dev/${p##*/}" ;;
  "$KJX_CMD_PORT") cmd="/dev/${p##*/}" ;;
  esac
done
if [ -z "$cmd" ]; then
  echo "kjx: no virtio-serial port $KJX_CMD_PORT; is virtio_console loaded?" >&2
  poweroff -f
fi
# before the wait, so a snapshot saved in it holds what they set up (docs/containers.md)
# shellcheck disable=SC1090 # kjx test writes it (checks.ts)
[ -f "$KJX_PREPARE" ] && (. "$KJX_PREPARE") </dev/null
# what a snapshot should not hold: clean caches (freed pages are zero with init_on_free)
echo 3 >/proc/sys/vm/drop_caches
exec 3<"$cmd"
read -r magic version kjx_nonce epoch seed length <&3
if [ "$magic $version" != "kjx-run 1" ]; then
  echo "kjx: the request on $KJX_CMD_PORT is not a kjx run request" >&2
  poweroff -f
fi
# kjx closes its end after the archive, so cpio meets the end of it without a `head -c`
# in front (an exec and a pipe fewer)
[ "$length" -gt 0 ] && cd / && cpio -idmu 2>/dev/null <&3
exec 3<&-
# per run, not per boot: a restored guest holds the saving boot's generator state and clock
echo "$seed" >/dev/urandom
# the helper sets the wall clock too: `date -s` would be one more exec (reseed-elf.ts)
"$KJX_RESEED" "$epoch" || echo "kjx: warning: the random generator was not reseeded or the clock not set (status $?)" >&2
(umask 077 && echo "$kjx_nonce" >"$KJX_NONCE_FILE")
kjx_nonce=
# sourced in a subshell rather than run by a new sh: one exec fewer
# shellcheck disable=SC1090 # kjx run writes it (run-hook.ts)
( . "$KJX_RUN_CMD" ) >"$out" 2>"$err" </dev/null
status=$?
read -r up _ </proc/uptime
# the nonce is read only now: the command's subshell above had no copy of it
read -r kjx_nonce 2>/dev/null <"$KJX_NONCE_FILE"
echo "
@@kjx:$kjx_nonce:exit status=$status uptime=$up"
# no sync: a run's initramfs is memory and its medium is attached with snapshot=on.
# sysrq's power-off is one builtin write; `poweroff -f` is two execs (our script, then
# busybox), ~80 ms under emulation. The kernel powers off from a worker, so the shell
# waits; poweroff -f only if the kernel has no sysrq or did not act.
if echo o 2>/dev/null >/proc/sysrq-trigger; then
  sleep 10
fi
poweroff -f
