/**
 * Test helper: the guest's shell on the host. Guest scripts are tested under busybox
 * `sh` (ash), the shell the guest has, not the host's /bin/sh: Debian's busybox
 * package, a host tool of the `test` use (`kjx doctor --install --for test`), the
 * same build kjx puts in images.
 */
import { type SpawnSyncOptions, type SpawnSyncReturns, spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import { inCi, needs, toolProblem } from './prereq.js';

/** The `skip` option for tests that run busybox sh (call once per file, where tests are declared). */
export function needsBusybox(): string | false {
  return needs('busybox (Debian package busybox)', toolProblem('busybox'));
}

/** `busybox sh ARGS...`, with spawnSync's options. */
export function busyboxSh(
  args: string[],
  o: SpawnSyncOptions & { encoding: BufferEncoding },
): SpawnSyncReturns<string>;
export function busyboxSh(args: string[], o?: SpawnSyncOptions): SpawnSyncReturns<Buffer>;
export function busyboxSh(args: string[], o: SpawnSyncOptions = {}): SpawnSyncReturns<string | Buffer> {
  return spawnSync('busybox', ['sh', ...args], o);
}

/** Whether busybox sh reads `text` as a script (`sh -n`); the error when it does not. */
export function busyboxParses(text: string | Buffer): { ok: boolean; error: string } {
  const r = busyboxSh(['-n'], { input: text, encoding: 'utf8' });
  return { ok: r.status === 0, error: r.stderr };
}

/**
 * The busybox binary for a test that decides inside its body, or the test is
 * skipped with the reason (it fails instead under CI). Prefer `needsBusybox()`.
 */
export function busyboxFor(t: TestContext): string | undefined {
  const problem = toolProblem('busybox');
  if (problem === undefined) return 'busybox';
  if (inCi()) throw new Error(`Debian's busybox is needed: ${problem}`);
  t.skip(problem);
  return undefined;
}
