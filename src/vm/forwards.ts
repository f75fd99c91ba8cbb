/**
 * Forwarded ports without a race: QEMU binds `hostfwd=tcp:127.0.0.1:0-:GUEST`
 * itself, the kernel picks a free port, and we read which one from QEMU.
 * Choosing a free port first and handing it to QEMU leaves a window in which
 * another process can take it (and QEMU then fails with "Could not set up host
 * forwarding rule"); here the port is never free between the choice and the bind.
 *
 * QEMU 7.2 reports forwards only through the human monitor's `info usernet`
 * (no QMP command yet), which prints one row per slirp socket:
 *
 *     Hub -1 (net0):
 *       Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
 *       TCP[HOST_FORWARD]   8       127.0.0.1 45151       10.0.2.15    22     0     0
 */
import { KjxError } from '../util/errors.js';
import { connectQmp, type QmpClient } from './qmp.js';

export interface ForwardRow {
  /** The port bound on the host. */
  host: number;
  /** The guest port it forwards to. */
  guest: number;
}

/** The TCP host forwards in `info usernet` output. */
export function parseUsernet(text: string): ForwardRow[] {
  const rows: ForwardRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*TCP\[HOST_FORWARD\]\s+\d+\s+\S+\s+(\d+)\s+\S+\s+(\d+)\b/.exec(line);
    if (m) rows.push({ host: Number(m[1]), guest: Number(m[2]) });
  }
  return rows;
}

/** The host port QEMU bound for the forward to `guestPort`. */
export async function forwardedPort(qmp: QmpClient, guestPort: number): Promise<number> {
  const text = await qmp.execute('human-monitor-command', { 'command-line': 'info usernet' });
  const row = parseUsernet(String(text)).find((r) => r.guest === guestPort);
  if (!row || row.host <= 0)
    throw new KjxError('VM_START', `QEMU reports no host port forwarded to guest port ${guestPort}`, {
      details: [`info usernet: ${String(text).trim()}`],
    });
  return row.host;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Connect to the QMP socket of a QEMU that was just started: it appears once
 * QEMU has parsed its options, so keep trying while `alive()` says QEMU runs.
 */
export async function connectQmpOnceUp(
  path: string,
  alive: () => boolean,
  timeoutMs: number,
): Promise<QmpClient> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await connectQmp(path, Math.max(1000, end - performance.now()));
    } catch (e) {
      if (!alive() || performance.now() > end) throw e;
      await sleep(50);
    }
  }
}
