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
  preparationsFor,
} from '../guest/checks.js';
import { KjxError } from '../util/errors.js';
import { buildWarn } from './build-warnings.js';
import { consoleExcerpt, runReport, timingReport } from './cmd-run.js';
import { EXIT, exitForVmOutcome } from './exit-codes.js';
import type { GlobalOptions } from './main.js';
import {
  addLimitOptions,
  addSnapshotOptions,
  addVmOptions,
  limitFlags,
  prepareFromFlags,
  snapshotFlags,
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
  addLimitOptions(
    addSnapshotOptions(
      addVmOptions(
        program
          .command('test')
          .description(
            'boot the image and run its smoke checks (/usr/lib/kjx/checks): all, or the ones named',
          )
          .argument('[checks...]', 'checks to run (default: every check the image has)'),
      ),
    ),
    { timeout: '900', silence: '300' },
    'the checks have finished',
  )
    .option('--timing', 'print the boot phases and service times on stderr')
    .option('--json', 'print one JSON result on stdout')
    .action(async (asked: string[], o: Record<string, string | boolean | undefined>) => {
      const limits = limitFlags(o);
      const warn = buildWarn(globals().strict);
      const p = await prepareFromFlags(o, warn);
      const checks = chooseChecks(checksOf(p.image.manifest.files), asked, String(o.file));
      const { launch } = await import('../vm/launch.js');
      const snapshots = snapshotFlags(o, warn);
      // the checks' preparations run before ready, so a snapshot saved there holds them
      const snapshotted = p.boot.kind === 'direct' && (snapshots.restore || snapshots.save);
      const prepare = preparationsFor(p.image.manifest.files, checks, snapshotted);
      const guest = await launch(p, { snapshots, prepare });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const t0 = performance.now();
      const ran = await guest.run(
        { argv: checkRunnerArgv(checks), env: {}, cwd: '/' },
        {
          stdout: new PassThrough().on('data', (b: Buffer) => out.push(b)),
          stderr: new PassThrough().on('data', (b: Buffer) => err.push(b)),
          ...limits,
        },
      );
      const r = runReport(guest, ran);
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
              accelReason: p.accel.reason,
              stateDir: r.stateDir,
              ...(r.start ? { start: r.start } : {}),
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
          `${results.length - failed} passed, ${failed} failed, in ${wallS.toFixed(1)} s (${r.start?.how === 'restored' ? 'restored from a snapshot at ready' : `boot to ready ${r.phases.ready?.toFixed(1) ?? '-'} s`})`,
        );
        if (r.outcome !== 'exited') {
          console.error(`kjx: the VM did not finish the checks (${r.outcome}): ${r.message ?? ''}`);
          if (r.excerpt) console.error(consoleExcerpt(r.stateDir, r.excerpt));
        }
        if (o.timing) console.error(timingReport(r, p.accel));
      }
      process.exitCode = code;
    });
}

/** The checks to run: the ones asked for (each must be in the image), else all of them. */
export function chooseChecks(available: string[], asked: string[], specPath: string): string[] {
  if (available.length === 0)
    throw new KjxError('USAGE', `the image of ${specPath} has no checks`, {
      hint: 'checks come with components such as runc, crun, gvisor, containerd, podman and docker',
    });
  const unknown = asked.filter((c) => !available.includes(c));
  if (unknown.length > 0)
    throw new KjxError('USAGE', `no check named ${unknown.join(', ')} in the image`, {
      hint: `the image has: ${available.join(', ')}`,
    });
  return asked.length > 0 ? asked : available;
}
