/**
 * A VM's state to and from a file through QEMU's migration stream and zstd: the two
 * halves of every snapshot, an ephemeral run's and a detached VM's.
 */
import { KjxError } from '../util/errors.js';
import type { QmpClient } from './qmp.js';

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Quote a word for the `sh -c` that QEMU's `exec:` migration runs. */
function shWord(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** QEMU's `-incoming` for a stream saved by `migrateToFile`. */
export function incomingFrom(path: string): string {
  return `exec:zstd -q -d -c ${shWord(path)}`;
}

/**
 * Stream a stopped VM's state through `zstd -1` into `path`. The caller stopped the
 * VM and resumes or quits it after; `alive` says whether its QEMU still runs.
 */
export async function migrateToFile(qmp: QmpClient, path: string, alive: () => boolean): Promise<void> {
  // the default cap (128 MiB/s) is for live migration; a paused VM goes as fast as it can
  await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 64 * 1024 ** 3 });
  await qmp.execute('migrate', { uri: `exec:zstd -q -1 -o ${shWord(path)}` });
  for (;;) {
    const st = (await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
    if (st.status === 'completed') return;
    if (st.status === 'failed' || st.status === 'cancelled')
      throw new KjxError(
        'VM_START',
        `migration ${st.status}${st['error-desc'] ? `: ${st['error-desc']}` : ''}`,
      );
    if (!alive()) throw new KjxError('VM_START', 'QEMU exited while saving');
    await delay(10);
  }
}

/**
 * After `-incoming`: wait until QEMU has loaded the stream, then let the VM run (it
 * arrives stopped, as it was saved).
 */
export async function resumeIncoming(qmp: QmpClient, alive: () => boolean): Promise<void> {
  for (;;) {
    const st = (await qmp.execute('query-status')) as { status?: string; running?: boolean };
    if (st.running) return;
    if (st.status !== 'inmigrate') {
      await qmp.execute('cont');
      return;
    }
    if (!alive()) throw new KjxError('VM_START', 'QEMU exited while loading the snapshot');
    await delay(5);
  }
}
