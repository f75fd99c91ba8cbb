#!/bin/sh
# What a detached VM restored from a snapshot must not keep from the boot it was saved
# from (docs/boot-time.md, "Detached VMs"): its random generator state and its clock.
# `kjx boot --restore` runs it once over SSH right after the restore, with the reseed
# helper on stdin; a restore of the same file twice then gives two different
# generators, and the guest's wall clock is the host's. Written by kjx from
# src/guest/sh/restore-fresh.sh.
#
# @value KJX_SEED   random bytes of this restore, hex, mixed into the pool
# @value KJX_EPOCH  the host's wall clock, seconds since 1970
echo "$KJX_SEED" >/dev/urandom
helper=$(mktemp) || exit 1
# the helper sets the wall clock after the reseed (reseed-elf.ts)
if cat >"$helper" && chmod 700 "$helper" && "$helper" "$KJX_EPOCH"; then
  :
else
  echo "kjx: warning: the random generator was not reseeded or the clock not set (status $?)" >&2
fi
rm -f "$helper"
