#!/bin/sh
# runit stage 2, /etc/runit/2: the stage2 marker, the boot-ready watcher, then runsvdir
# until runit TERMs it to stop (docs/services.md). Written into images by kjx build from
# src/guest/sh/stage2.sh.
#
# @value KJX_PATH        PATH of every generated script
# @value KJX_NONCE_FILE  stage 1's root-only copy of the boot's marker nonce
# @value KJX_BOOT_READY  the boot-ready watcher (boot-ready.sh)
# @value KJX_SV          what runsvdir watches: one link per enabled service
export PATH="$KJX_PATH"
read -r up _ </proc/uptime
read -r kjx_nonce 2>/dev/null <"$KJX_NONCE_FILE"
echo "
@@kjx:$kjx_nonce:stage2 uptime=$up"
echo "kjx: stage 2 after $up s"
# detached (double fork): reports readiness, then runs the kjx run hook if there is one
( "$KJX_BOOT_READY" </dev/null >/dev/console 2>&1 & )
# runsvdir sleeps a second before its first scan when the directory changed within the
# current second (so it never reads one half made). Stage 1 is done with it, and a kernel
# that does not keep the initramfs's mtimes dates it to this boot: date it back.
touch -d @0 "$KJX_SV" 2>/dev/null
exec env - PATH="$PATH" runsvdir -P "$KJX_SV" 'log: ...........................................................................'
