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
 * does not take the others' results with it.
 */
export const CHECKS_DIR = '/usr/lib/kjx/checks';
/** Seconds one check may take (then it is killed: status 137). */
export const CHECK_TIMEOUT = 300;
export const CHECK_PREFIX = '@@check';

/** The names of the checks an image has, from its manifest's file list. */
export function checksOf(files: { path: string; type: string; mode: string }[]): string[] {
  const prefix = `${CHECKS_DIR}/`;
  return files
    .filter(
      (f) =>
        f.type === 'file' &&
        f.path.startsWith(prefix) &&
        !f.path.slice(prefix.length).includes('/') &&
        (Number.parseInt(f.mode, 8) & 0o111) !== 0,
    )
    .map((f) => f.path.slice(prefix.length))
    .sort();
}

/** The command `kjx test` runs: `sh -c RUNNER kjx-test CHECK...`. */
export function checkRunnerArgv(checks: string[]): string[] {
  const runner = [
    'for c in "$@"; do',
    '  read -r t0 _ </proc/uptime',
    `  echo "${CHECK_PREFIX} begin name=$c"`,
    `  timeout -s KILL ${CHECK_TIMEOUT} ${CHECKS_DIR}/"$c" </dev/null >/tmp/kjx-check.out 2>&1`,
    '  rc=$?',
    '  read -r t1 _ </proc/uptime',
    '  while IFS= read -r l; do printf \'| %s\\n\' "$l"; done </tmp/kjx-check.out',
    `  echo "${CHECK_PREFIX} end name=$c status=$rc t0=$t0 t1=$t1"`,
    'done',
  ].join('\n');
  return ['/bin/sh', '-c', runner, 'kjx-test', ...checks];
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
