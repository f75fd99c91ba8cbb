/**
 * Networking, configured in runit stage 1 with busybox `ip` and `udhcpc`:
 * loopback always, then each interface of the spec, DHCP or static (IPv4).
 *
 * DHCP runs udhcpc once (`-q`: quit once bound; `-n`: give up after 3 tries) with a
 * generated event script that sets address, default route and resolv.conf. The
 * lease is not renewed; QEMU's user network (slirp) leases for a day.
 * /etc/resolv.conf is a link into /run, so a read-only root still gets DNS.
 */
import { addEntry, type EntrySource, mk, newTree, type Tree } from '../rootfs/tree.js';
import type { InterfaceSpec, Spec } from '../spec/schema.js';
import { readShFile, renderSh } from './sh-file.js';
import { shQuote } from './shell.js';

export const UDHCPC_SCRIPT = '/usr/lib/kjx/udhcpc.script';
export const RESOLV_CONF = '/run/resolv.conf';

/** udhcpc's event script (src/guest/sh/udhcpc.sh): $1 is deconfig, bound, renew, leasefail or nak; the lease is in the environment. */
export function udhcpcScript(): string {
  return renderSh(readShFile(new URL('./sh/udhcpc.sh', import.meta.url)), { KJX_RESOLV_CONF: RESOLV_CONF });
}

function interfaceLines(name: string, i: InterfaceSpec): string[] {
  const dev = shQuote(name);
  const lines = [`if kjx_have_if ${dev}; then`, `  ip link set ${dev} up`];
  if (i.kind === 'dhcp') {
    lines.push(
      `  udhcpc -i ${dev} -s ${UDHCPC_SCRIPT} -q -n -t 3 -T 1 -A 1 -x hostname:"$(hostname)" ||`,
      `    echo "kjx: warning: ${name}: no DHCP lease"`,
    );
  } else {
    lines.push(`  ip -4 addr add ${i.address}/${i.prefix} dev ${dev}`);
    if (i.gateway) lines.push(`  ip -4 route add default via ${i.gateway} dev ${dev}`);
    if (i.dns.length > 0) {
      lines.push(`  : >${RESOLV_CONF}`);
      for (const d of i.dns) lines.push(`  echo "nameserver ${d}" >>${RESOLV_CONF}`);
    }
    lines.push(`  echo "kjx: ${name}: static ${i.address}/${i.prefix} gateway ${i.gateway ?? 'none'}"`);
  }
  lines.push('else', `  echo "kjx: warning: no network interface ${name}"`, 'fi');
  return lines;
}

/** Stage 1 lines: loopback, then every interface of the spec in order. */
export function networkLines(spec: Spec): string[] {
  const lines = [
    '# kjx_have_if NAME: the interface exists (a NIC driver may register it a moment late;',
    '# waited for only while a virtio network device, id 1, has no interface yet: a VM',
    '# without one, like a `kjx run`, goes on at once)',
    'kjx_have_if() {',
    '  [ -e "/sys/class/net/$1" ] && return 0',
    '  kjx_nic=',
    '  for kjx_d in /sys/bus/virtio/devices/*; do',
    '    kjx_id=',
    '    read -r kjx_id <"$kjx_d/device" 2>/dev/null',
    '    [ "$kjx_id" = 0x0001 ] && kjx_nic=1',
    '  done',
    '  [ -n "$kjx_nic" ] || return 1',
    '  for kjx_i in 1 2 3 4 5; do',
    '    [ -e "/sys/class/net/$1" ] && return 0',
    '    usleep 100000',
    '  done',
    '  return 1',
    '}',
    'ip link set lo up',
  ];
  for (const [name, i] of Object.entries(spec.network)) lines.push(...interfaceLines(name, i));
  return lines;
}

/** Files networking needs: the udhcpc script and the resolv.conf link. */
export function networkTree(): Tree {
  const src: EntrySource = { kind: 'generated', by: 'kjx network' };
  const t = newTree();
  addEntry(t, mk.file(UDHCPC_SCRIPT, udhcpcScript(), src, 0o755));
  addEntry(t, mk.symlink('/etc/resolv.conf', `..${RESOLV_CONF}`, src));
  return t;
}
