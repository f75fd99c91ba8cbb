/**
 * Host prerequisites of tests: a tool on PATH, a host file, a package apt can
 * download. Every conditional skip in the suite goes through `needs`, so one place
 * decides what a missing prerequisite means:
 *
 * - on a developer's machine, the tests that need it are skipped, saying why;
 * - under CI (`CI` set, as CI services do and `.ci/run` does), the run fails: a
 *   test named after the prerequisite fails with the reason, because a skipped
 *   test there would read as a pass for something that never ran.
 */
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

/** Whether we run under CI: `CI` set to anything but '', '0' or 'false'. */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI?.trim().toLowerCase();
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/**
 * The `skip` option for tests that need `what`: `false` when `problem` is
 * undefined or false (the prerequisite is there), the reason otherwise. Under CI a
 * missing prerequisite also registers a failing test, so the run cannot pass.
 * Call it where tests are declared (module top level or a describe body).
 */
export function needs(what: string, problem: string | false | undefined): string | false {
  if (problem === undefined || problem === false) return false;
  if (inCi()) {
    test(`host prerequisite: ${what}`, () => {
      throw new Error(
        `${what} is missing, and under CI the tests that need it fail instead of skipping: ${problem}`,
      );
    });
  }
  return `${what}: ${problem}`;
}

/** `undefined` when `command` is on PATH, else why not (for `needs`). */
export function toolProblem(command: string): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { encoding: 'utf8' });
  return r.status === 0
    ? undefined
    : `\`${command}\` is not on PATH (kjx doctor --install --for test installs it)`;
}

/** `needs` for a command on PATH. */
export function needsTool(command: string): string | false {
  return needs(command, toolProblem(command));
}
