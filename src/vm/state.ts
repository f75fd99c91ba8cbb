/**
 * State directories of VMs: `$KJX_STATE_DIR`, else `$XDG_STATE_HOME/kjx`, else
 * `~/.local/state/kjx`. Each VM gets its own directory (sockets, console log, pid),
 * so any number of VMs run side by side without colliding.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function stateRoot(): string {
  return (
    process.env.KJX_STATE_DIR ?? join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'kjx')
  );
}

/** A fresh directory for one `kjx run`; older ones beyond `keep` are removed. */
export function newRunDir(keep = 20): string {
  const base = join(stateRoot(), 'runs');
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const dir = mkdtempSync(join(base, `${stamp}-${process.pid}-`));
  const all = readdirSync(base)
    .map((n) => ({ n, t: statSync(join(base, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const old of all.slice(keep)) rmSync(join(base, old.n), { recursive: true, force: true });
  return dir;
}
