/**
 * `kjx test [-f spec] [--json] [CHECK...]`: build the image if needed, boot an
 * ephemeral VM (the `kjx run` machinery) and run the image's smoke checks
 * (src/guest/checks.ts): all of them, or the ones named. One line per check, its
 * output when it fails; exit 0 when every check passed, 1 when one failed, and
 * 123-125 when the VM itself failed as `kjx run` does.
 */
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import {
  CHECK_TIMEOUT,
  type CheckResult,
  checkRunnerArgv,
  checksOf,
  parseCheckOutput,
} from '../guest/checks.js';
import { KjxError } from '../util/errors.js';
import type { RunResult } from '../vm/run.js';
import { buildWarn } from './build-warnings.js';
import { consoleExcerpt, timingReport } from './cmd-run.js';
import { EXIT, exitForVmOutcome } from './exit-codes.js';
import type { GlobalOptions } from './main.js';
import {
  addVmOptions,
  bootTarget,
  builtImage,
  checkBootChoice,
  memoryOption,
  numberOption,
  resolveAccel,
} from './vm-options.js';

/** Why a check failed, in parentheses after its time. */
function failure(r: CheckResult): string {
  if (r.status === undefined) return '  (did not finish)';
  // the runner's `timeout -s KILL`: 128 + SIGKILL
  if (r.status === 137)
    return r.seconds === undefined || r.seconds >= CHECK_TIMEOUT - 1
      ? `  (killed after the ${CHECK_TIMEOUT} s check timeout: status 137)`
      : '  (killed: status 137, SIGKILL before the check timeout, out of memory?)';
  return `  (status ${r.status})`;
}

/**
 * One line per check: `pass  NAME  1.23 s` or `FAIL  NAME  4.56 s  (status 1)`,
 * and a failed check's last output lines.
 */
export function formatChecks(results: CheckResult[]): string {
  const w = Math.max(0, ...results.map((r) => r.name.length));
  const lines: string[] = [];
  for (const r of results) {
    const time = r.seconds === undefined ? '      -' : `${r.seconds.toFixed(2).padStart(7)} s`;
    const why = r.pass ? '' : failure(r);
    lines.push(`${r.pass ? 'pass' : 'FAIL'}  ${r.name.padEnd(w)}  ${time}${why}`);
    if (!r.pass) for (const l of r.output.slice(-20)) lines.push(`      | ${l}`);
  }
  return lines.join('\n');
}

export function registerTest(program: Command, globals: () => GlobalOptions): void {
  addVmOptions(
    program
      .command('test')
      .description('boot the image and run its smoke checks (/usr/lib/kjx/checks): all, or the ones named')
      .argument('[checks...]', 'checks to run (default: every check the image has)'),
  )
    .option('--timeout <seconds>', 'wall-clock limit for boot + checks', '900')
    .option('--silence <seconds>', 'kill the VM after this long without any output (0 = never)', '300')
    .option('--timing', 'print the boot phases and service times on stderr')
    .option('--json', 'print one JSON result on stdout')
    .action(async (asked: string[], o: Record<string, string | boolean | undefined>) => {
      const kind = await checkBootChoice(String(o.file), String(o.artifact), String(o.firmware));
      const img = await builtImage(String(o.file), String(o.out), buildWarn(globals().strict));
      const available = checksOf(img.manifest.files);
      if (available.length === 0)
        throw new KjxError('USAGE', `the image of ${String(o.file)} has no checks`, {
          hint: 'checks come with components such as runc, crun, gvisor, containerd, podman and docker',
        });
      const unknown = asked.filter((c) => !available.includes(c));
      if (unknown.length > 0)
        throw new KjxError('USAGE', `no check named ${unknown.join(', ')} in the image`, {
          hint: `the image has: ${available.join(', ')}`,
        });
      const checks = asked.length > 0 ? asked : available;
      const accel = await resolveAccel(String(o.accel), img.kernel);
      const target = await bootTarget(img, kind, String(o.firmware));
      const { newRunDir } = await import('../vm/state.js');
      const { runInVm } = await import('../vm/run.js');
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const stateDir = newRunDir();
      const t0 = performance.now();
      const r: RunResult = await runInVm({
        artifacts: img,
        command: { argv: checkRunnerArgv(checks), env: {}, cwd: '/' },
        mounts: [],
        stateDir,
        accel: accel.accel,
        memoryMiB: memoryOption(o.memory, img),
        cpus: numberOption('cpus', o.cpus, 1),
        timeoutS: numberOption('timeout', o.timeout, 1),
        silenceS: numberOption('silence', o.silence, 0),
        stdout: new PassThrough().on('data', (b: Buffer) => out.push(b)),
        stderr: new PassThrough().on('data', (b: Buffer) => err.push(b)),
        ...(target.firmware ? { vm: { firmware: target.firmware } } : {}),
        ...(target.media ? { media: target.media } : {}),
      });
      const wallS = (performance.now() - t0) / 1000;
      const results = parseCheckOutput(Buffer.concat(out).toString('utf8'), checks);
      const failed = results.filter((c) => !c.pass).length;
      const code =
        r.outcome === 'exited' ? (failed > 0 ? EXIT.failed : EXIT.ok) : exitForVmOutcome(r.outcome);
      if (o.json) {
        process.stdout.write(
          `${JSON.stringify(
            {
              outcome: r.outcome,
              exitCode: code,
              passed: results.length - failed,
              failed,
              checks: results,
              wallSeconds: wallS,
              phases: r.phases,
              services: r.services,
              accel: r.accel,
              accelReason: accel.reason,
              stateDir,
              ...(r.message ? { message: r.message } : {}),
              ...(r.excerpt ? { excerpt: r.excerpt } : {}),
            },
            null,
            2,
          )}\n`,
        );
      } else {
        console.log(formatChecks(results));
        console.log(
          `${results.length - failed} passed, ${failed} failed, in ${wallS.toFixed(1)} s (boot to ready ${r.phases.ready?.toFixed(1) ?? '-'} s)`,
        );
        if (r.outcome !== 'exited') {
          console.error(`kjx: the VM did not finish the checks (${r.outcome}): ${r.message ?? ''}`);
          if (r.excerpt) console.error(consoleExcerpt(stateDir, r.excerpt));
        }
        if (o.timing) console.error(timingReport(r, accel));
      }
      process.exitCode = code;
    });
}
