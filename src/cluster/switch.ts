/**
 * The cluster's LAN: one VDE switch (Debian's vde2, `vde_switch`), started by the
 * cluster's supervisor. Each node's QEMU plugs a NIC into its own port
 * (`-netdev vde,sock=DIR,port=N`). The switch runs as the user, with no host
 * interface: the nodes reach each other and nothing else over it. Its stdin is a
 * pipe the supervisor holds, so it ends with the supervisor (vde_switch exits on
 * EOF on stdin), as well as through the supervisor's death signal. The management
 * socket is where faults go (ports moved between VLANs, docs/cluster.md).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KjxError } from '../util/errors.js';
import type { SupervisorClient } from './supervisor.js';

export interface SwitchRecord {
  pid: number;
  /** The switch's socket directory (what QEMU's `sock=` names). */
  sock: string;
  /** Its management socket. */
  mgmt: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start the switch with a port for each node (and spares) and wait for its control socket. */
export async function startSwitch(dir: string, s: SupervisorClient, nodes: number): Promise<SwitchRecord> {
  const sock = join(dir, 'switch');
  const mgmt = join(dir, 'switch.mgmt');
  const pid = await s.spawn(
    [
      'vde_switch',
      '--sock',
      sock,
      '--mode',
      '600',
      '--dirmode',
      '700',
      '--mgmt',
      mgmt,
      '--mgmtmode',
      '600',
      '--numports',
      String(Math.max(32, nodes + 8)),
    ],
    { stdinPipe: true, stdout: join(dir, 'switch.log'), stderr: join(dir, 'switch.log') },
  );
  const end = performance.now() + 10_000;
  while (!existsSync(join(sock, 'ctl')) || !existsSync(mgmt)) {
    if (performance.now() > end) {
      throw new KjxError('VM_START', `vde_switch did not open its sockets in ${dir} within 10 s`, {
        hint: `see ${join(dir, 'switch.log')}; is vde2 installed? (kjx doctor --install)`,
      });
    }
    await sleep(50);
  }
  return { pid, sock, mgmt };
}
