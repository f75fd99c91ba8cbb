/**
 * The minimal guest init (until the runit stages take over as PID 1): mount the
 * kernel filesystems, load the spec's modules in closure order, print the banner
 * and the ready marker, then keep a shell on the console.
 *
 * It is busybox ash, generated here; no Node.js runs in the guest.
 */
import type { Spec } from '../spec/schema.js';
import { markerShell } from './markers.js';

export interface InitInputs {
  buildId: string;
}

export function banner(spec: Spec, buildId: string): string {
  return [
    '',
    '   _    _       ',
    '  | | _(_)_  __ ',
    '  | |/ / \\ \\/ / ',
    '  |   <| |>  <   kjx-headless',
    `  |_|\\_\\ |_/\\_\\  ${spec.name} ${spec.version} (build ${buildId})`,
    '      |__/      ',
    '',
  ].join('\n');
}

export function minimalInit({ buildId }: InitInputs): string {
  return `#!/bin/sh
# kjx minimal init: generated, do not edit (kjx build rewrites it).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=linux
umask 022
${markerShell('init', '')}
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev || echo "kjx: devtmpfs unavailable, using the static /dev"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
hostname -F /etc/hostname
failed=""
if [ -s /etc/kjx/modules ]; then
  while read -r m; do
    [ -n "$m" ] || continue
    modprobe "$m" || failed="$failed $m"
  done < /etc/kjx/modules
fi
[ -z "$failed" ] || echo "kjx: failed to load kernel modules:$failed" >&2
cat /etc/kjx/banner
${markerShell('ready', `build=${buildId} kernel=$(uname -r)`)}
# \`kjx run\` appends a hook and a command at boot time (docs/guest-protocol.md)
[ -x /usr/lib/kjx/run-hook ] && exec /usr/lib/kjx/run-hook
# a shell on the console, restarted when it exits; the console is the VM owner's only
while true; do
  setsid cttyhack sh -l
  sleep 1
done
`;
}
