#!/bin/sh
# /usr/lib/kjx/switch-root: run by the kernel instead of /init (rdinit=) when a kjx disk
# image boots (docs/media.md). It mounts the root named by kjx.root= and hands over to
# its /init; without kjx.root=, or when the root cannot be found or mounted, it says so
# (marker `root status=failed`) and execs the initramfs's /init. Written into disk
# images by kjx build from src/guest/sh/switch-root.sh.
#
# @value KJX_ROOT_MODULES   disk and file system drivers to load (modules or built in; plain words)
# @value KJX_ROOT_WAIT      seconds to wait for the root device to appear
# @value KJX_FW_CFG_MODULE  the fw_cfg driver, for the boot's marker nonce
# @value KJX_NONCE_RAW      the boot's marker nonce in fw_cfg, readable by root only
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
root=""
# shellcheck disable=SC2013 # the command line is one line of words
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    kjx.root=*) root="${arg#kjx.root=}" ;;
  esac
done
if [ -z "$root" ]; then
  umount /proc
  exec /init
fi
fail() {
  echo "kjx: $1; booting the initramfs system instead (nothing written will persist)"
  echo "
@@kjx:$kjx_nonce:root status=failed"
  umount /newroot 2>/dev/null
  umount /dev 2>/dev/null
  umount /sys 2>/dev/null
  umount /proc 2>/dev/null
  exec /init
}
mount -t sysfs sysfs /sys
mount -t devtmpfs -o mode=0755 devtmpfs /dev
for m in $KJX_ROOT_MODULES; do modprobe -q "$m" 2>/dev/null; done
# this boot's nonce (docs/guest-protocol.md): fw_cfg, readable by root only
kjx_nonce=
[ -d /sys/firmware ] || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
[ -d /sys/firmware/qemu_fw_cfg ] || modprobe -q "$KJX_FW_CFG_MODULE" 2>/dev/null
# read's status is no guide: fw_cfg's file has no final newline
read -r kjx_nonce 2>/dev/null <"$KJX_NONCE_RAW"
dev=""
i=0
while [ "$i" -lt $((KJX_ROOT_WAIT * 10)) ]; do
  dev=$(findfs "$root" 2>/dev/null) && [ -b "$dev" ] && break
  dev=""
  i=$((i + 1))
  usleep 100000 2>/dev/null || sleep 1
done
[ -n "$dev" ] || fail "no file system with $root after $KJX_ROOT_WAIT s"
mkdir -p /newroot
mount -t ext4 -o rw "$dev" /newroot || fail "cannot mount $dev ($root)"
[ -x /newroot/init ] || fail "$dev ($root) has no executable /init"
echo "
@@kjx:$kjx_nonce:root status=ok dev=$dev"
umount /dev
umount /sys
umount /proc
exec switch_root -c /dev/console /newroot /init
