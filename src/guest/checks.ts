/**
 * Smoke checks in the guest (docs/containers.md): components ship executable
 * scripts in /usr/lib/kjx/checks/; `kjx test` runs the ones asked for, in a VM
 * booted by `kjx run`'s machinery, through the runner below, and reads one
 * `@@check` line per check from the command's stdout:
 *
 *   @@check begin name=NAME
 *   | every line the check printed (stdout and stderr)
 *   @@check end name=NAME status=N t0=UPTIME t1=UPTIME
 *
 * A check passes when it exits 0. Each runs under `timeout` so one hung runtime
 * does not take the others' results with it. The runner's shell is
 * src/guest/sh/check-runner.sh.
 */
import type { Tree } from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';
import { readShFile, renderSh, type ShValues } from './sh-file.js';

/** Where the checks live; `kjx test` runs every executable file directly in it. */
export const CHECK_DIR = '/usr/lib/kjx/checks';
/**
 * A check's preparation, when it has one (same name): what sets the check up rather
 * than tests (a check image to load). `kjx test` has the run hook run it before ready,
 * so a snapshot holds it (src/guest/sh/check-prepare.sh).
 */
export const CHECK_PREP_DIR = '/usr/lib/kjx/check-prep';
/** Where the run hook marks the preparations that succeeded (memory: gone with the VM). */
export const CHECK_PREPARED = '/run/kjx/check-prepared';
/** Seconds one check may take (then it is killed: status 137). */
export const CHECK_TIMEOUT = 300;
export const CHECK_PREFIX = '@@check';
/**
 * What a check may be called: its name goes through the runner's `@@check` lines,
 * which are split at spaces and "=", and onto the `kjx test` command line.
 */
export const CHECK_NAME = /^[A-Za-z0-9._-]+$/;

/** The check's name when `path` is directly in `dir` (CHECK_DIR or CHECK_PREP_DIR), else undefined. */
function checkName(path: string, dir = CHECK_DIR): string | undefined {
  const prefix = `${dir}/`;
  const name = path.startsWith(prefix) ? path.slice(prefix.length) : '';
  return name !== '' && !name.includes('/') ? name : undefined;
}

/** The names of the checks an image has, from its manifest's file list (names kjx cannot run are left out). */
export function checksOf(files: { path: string; type: string; mode: string }[]): string[] {
  return executablesIn(files, CHECK_DIR);
}

/** The checks among `checks` that have a preparation in the image (its manifest's file list). */
export function preparedOf(
  files: { path: string; type: string; mode: string }[],
  checks: string[],
): string[] {
  const preps = new Set(executablesIn(files, CHECK_PREP_DIR));
  return checks.filter((c) => preps.has(c));
}

/**
 * The preparations a `kjx test` VM runs before ready: with snapshots in use, every
 * one the image has, so one snapshot serves every `kjx test` of it (and `kjx build
 * --snapshot` saves that one); otherwise only those of the checks asked for.
 */
export function preparationsFor(
  files: { path: string; type: string; mode: string }[],
  asked: string[],
  snapshotted: boolean,
): string[] {
  return preparedOf(files, snapshotted ? checksOf(files) : asked);
}

function executablesIn(files: { path: string; type: string; mode: string }[], dir: string): string[] {
  return files
    .filter((f) => f.type === 'file' && (Number.parseInt(f.mode, 8) & 0o111) !== 0)
    .map((f) => checkName(f.path, dir))
    .filter((n): n is string => n !== undefined && CHECK_NAME.test(n))
    .sort();
}

/**
 * Refuse, at build time, an executable file in CHECK_DIR whose name is not a
 * check name (a `files:` entry, most likely): `kjx test` could not run it.
 * @throws KjxError TREE_INVALID naming the file and where it came from
 */
export function refuseBadCheckNames(tree: Tree): void {
  for (const e of tree.values()) {
    const name = checkName(e.path);
    if (e.type !== 'file' || (e.mode & 0o111) === 0 || name === undefined || CHECK_NAME.test(name)) continue;
    const from =
      e.source.kind === 'input'
        ? ` (files: ${e.source.ref})`
        : e.source.kind === 'deb'
          ? ` (package ${e.source.package})`
          : '';
    throw new KjxError(
      'TREE_INVALID',
      `check ${JSON.stringify(e.path)}${from}: a check name may only have letters, digits, ".", "_" and "-"`,
      {
        hint: `rename it under ${CHECK_DIR}/ (kjx test passes the name to the guest and reads it back from @@check lines), or make it not executable`,
      },
    );
  }
}

/** Where the runner keeps a check's output until it prints it. */
export const CHECK_OUT = '/tmp/kjx-check.out';

/** The values check-runner.sh declares, as `kjx test` gives them. */
export function checkRunnerValues(): ShValues {
  return {
    KJX_CHECK_DIR: CHECK_DIR,
    KJX_CHECK_PREP_DIR: CHECK_PREP_DIR,
    KJX_CHECK_PREPARED: CHECK_PREPARED,
    KJX_CHECK_TIMEOUT: CHECK_TIMEOUT,
    KJX_CHECK_PREFIX: CHECK_PREFIX,
    KJX_CHECK_OUT: CHECK_OUT,
  };
}

/** The command `kjx test` runs: `sh -c RUNNER kjx-test CHECK...` (src/guest/sh/check-runner.sh). */
export function checkRunnerArgv(checks: string[], values: ShValues = checkRunnerValues()): string[] {
  const runner = renderSh(readShFile(new URL('./sh/check-runner.sh', import.meta.url)), values);
  return ['/bin/sh', '-c', runner, 'kjx-test', ...checks];
}

/**
 * What the run hook sources before it waits at ready when `kjx test` runs checks with
 * preparations (src/guest/sh/check-prepare.sh); part of the hook payload, so part of
 * a snapshot's key.
 */
export function checkPrepareScript(prepare: string[]): string {
  for (const c of prepare) if (!CHECK_NAME.test(c)) throw new Error(`not a check name: ${JSON.stringify(c)}`);
  return renderSh(readShFile(new URL('./sh/check-prepare.sh', import.meta.url)), {
    KJX_CHECK_PREP_DIR: CHECK_PREP_DIR,
    KJX_CHECK_PREPARED: CHECK_PREPARED,
    KJX_CHECK_TIMEOUT: CHECK_TIMEOUT,
    KJX_PREPARE: prepare.join(' '),
  });
}

export interface CheckResult {
  name: string;
  /** Exit status; undefined when the check never ended (the VM stopped or timed out). */
  status?: number;
  pass: boolean;
  /** Seconds the check took (guest clock). */
  seconds?: number;
  /** Guest uptime when it started. */
  startedAt?: number;
  output: string[];
}

/** Read the runner's stdout into one result per asked-for check, in the order asked. */
export function parseCheckOutput(stdout: string, asked: string[]): CheckResult[] {
  const results = new Map<string, CheckResult>(
    asked.map((name) => [name, { name, pass: false, output: [] }]),
  );
  let cur: CheckResult | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${CHECK_PREFIX} `)) {
      const [, what, ...kv] = line.split(' ');
      const f = Object.fromEntries(kv.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
      const r = results.get(f.name ?? '');
      if (!r) continue;
      if (what === 'begin') cur = r;
      else if (what === 'end') {
        r.status = Number(f.status);
        r.pass = r.status === 0;
        r.startedAt = Number(f.t0);
        r.seconds = Number(f.t1) - Number(f.t0);
        cur = undefined;
      }
    } else if (cur && line.startsWith('| ')) cur.output.push(line.slice(2));
  }
  return asked.map((n) => results.get(n)!);
}
