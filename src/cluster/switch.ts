/**
 * The cluster's LAN: one VDE switch (Debian's vde2, `vde_switch`), started by the
 * cluster's supervisor. Each node's QEMU plugs a NIC into its own port
 * (`-netdev vde,sock=DIR,port=N`). The switch runs as the user, with no host
 * interface: the nodes reach each other and nothing else over it. Its stdin is a
 * pipe the supervisor holds, so it ends with the supervisor (vde_switch exits on
 * EOF on stdin), as well as through the supervisor's death signal. The management
 * socket is where faults go (ports moved between VLANs, docs/cluster.md).
 */
import { existsSync, mkdirSync } from 'node:fs';
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

async function waitFor(paths: string[], what: string, log: string): Promise<void> {
  const end = performance.now() + 10_000;
  while (!paths.every((p) => existsSync(p))) {
    if (performance.now() > end) {
      throw new KjxError('VM_START', `${what} did not open its sockets within 10 s`, {
        hint: `see ${log}; is vde2 installed? (kjx doctor --install)`,
      });
    }
    await sleep(50);
  }
}

/** A node's link to the cluster switch: its own small switch, then a wirefilter. */
export interface NodeLink {
  /** The node's switch: QEMU plugs into it. */
  sock: string;
  /** The wirefilter's management socket (delay and loss). */
  mgmt: string;
  switchPid: number;
  filterPid: number;
}

/**
 * The link of one node: QEMU → the node's own switch → wirefilter → port `port` of
 * the cluster switch. The wirefilter is where delay and loss are set at run time
 * (`kjx cluster netem`); the cluster switch's port is where a partition moves the
 * node to another VLAN. The link outlives a node that is killed and started again.
 */
export async function startNodeLink(
  dir: string,
  s: SupervisorClient,
  cluster: SwitchRecord,
  port: number,
): Promise<NodeLink> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const sock = join(dir, 'switch');
  const mgmt = join(dir, 'link.mgmt');
  const log = join(dir, 'link.log');
  const switchPid = await s.spawn(
    ['vde_switch', '--sock', sock, '--mode', '600', '--dirmode', '700', '--numports', '4'],
    { stdinPipe: true, stdout: log, stderr: log },
  );
  await waitFor([join(sock, 'ctl')], "a node's switch", log);
  // wirefilter, like the switch, ends on EOF on its stdin
  const filterPid = await s.spawn(
    ['wirefilter', '--vde-plug', `${sock}:${cluster.sock}[${port}]`, '--mgmt', mgmt, '--mgmtmode', '600'],
    { stdinPipe: true, stdout: log, stderr: log },
  );
  await waitFor([mgmt], 'wirefilter', log);
  return { sock, mgmt, switchPid, filterPid };
}

/** Delay (ms, each way) and loss (%, each way) on a node's link. */
export async function setNetem(link: NodeLink, delayMs: number, lossPct: number): Promise<void> {
  await switchCommands(link.mgmt, [`delay ${delayMs}`, `loss ${lossPct}`]);
}

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
  await switchCommands(mgmt, [`vlan/create ${PARTITION_VLAN}`]);
  return { pid, sock, mgmt };
}

/** The VLAN a partition moves its nodes' ports to; every port starts on VLAN 0. */
export const PARTITION_VLAN = 77;

/** The prompts of vde_switch's and wirefilter's management sockets. */
const PROMPT = /(?:vde|VDEwf)\$ /;

/**
 * Run commands on a management socket of the switch or of a wirefilter, in order.
 * Their protocol: a banner and the prompt (`vde$ `, `VDEwf$ `), then per command
 * any output lines, a line `NNNN message` (1000 is success) and the prompt again.
 * @throws KjxError VM_START naming the command that failed
 */
export async function switchCommands(
  mgmt: string,
  commands: string[],
  timeoutMs = 10_000,
): Promise<string[]> {
  const { createConnection } = await import('node:net');
  const sock = createConnection(mgmt);
  let buf = '';
  let wake: (() => void) | undefined;
  sock.on('data', (d) => {
    buf += d.toString('utf8');
    wake?.();
  });
  const failed = new Promise<never>((_, rej) => {
    sock.once('error', (e) =>
      rej(new KjxError('VM_START', `the cluster's switch does not answer at ${mgmt}`, { cause: e })),
    );
    setTimeout(
      () => rej(new KjxError('VM_START', `the cluster's switch did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    ).unref();
  });
  const prompt = async (): Promise<string> => {
    for (;;) {
      const m = PROMPT.exec(buf);
      if (m) {
        const before = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        return before;
      }
      await Promise.race([new Promise<void>((r) => (wake = r)), failed]);
    }
  };
  try {
    await prompt();
    const out: string[] = [];
    for (const c of commands) {
      sock.write(`${c}\n`);
      const text = await prompt();
      const code = /^(\d{4}) (.*)$/m.exec(text);
      if (code?.[1] !== '1000') {
        throw new KjxError(
          'VM_START',
          `the cluster's switch refused \`${c}\`: ${code ? code[2] : text.trim()}`,
        );
      }
      out.push(text.slice(0, code.index).trim());
    }
    return out;
  } finally {
    sock.destroy();
  }
}
