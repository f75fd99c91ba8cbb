import { readFileSync } from 'node:fs';

/**
 * Whether a process is there: the owner of a lock or a temporary file. EPERM means it
 * is there but belongs to someone else, which for a lock is still "in use".
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The process that owns a temporary file or directory, from its name: an atomic write's
 * `.NAME.tmp-PID-HEX` (util/atomic.ts) or a temporary directory's `PREFIX-PID-XXXXXX`.
 */
export function tempOwner(name: string): number | undefined {
  const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(name) ?? /-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** A temporary whose writer is gone (not this process, not alive): what a sweep removes. */
export function abandonedTemp(name: string): boolean {
  const pid = tempOwner(name);
  return pid !== undefined && pid !== process.pid && !pidAlive(pid);
}

/** The live process a lock file (its pid on the first line) names, if there is one. */
export function lockHolder(lock: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(lock, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // released meanwhile
    throw e;
  }
  const pid = Number.parseInt(text, 10);
  return pidAlive(pid) ? pid : undefined;
}
