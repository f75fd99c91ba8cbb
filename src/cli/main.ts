/**
 * The `kjx` command line: one file per command registers itself; this file wires
 * global options, and is the one place that prints errors and chooses exit codes.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerBoot } from './cmd-boot.js';
import { registerBuild } from './cmd-build.js';
import { registerCache } from './cmd-cache.js';
import { registerCluster } from './cmd-cluster.js';
import { registerDiff } from './cmd-diff.js';
import { registerDoctor } from './cmd-doctor.js';
import { registerExec } from './cmd-exec.js';
import { registerInit } from './cmd-init.js';
import { registerInspect } from './cmd-inspect.js';
import { registerPs } from './cmd-ps.js';
import { registerRun } from './cmd-run.js';
import { registerSnapshot } from './cmd-snapshot.js';
import { registerStop } from './cmd-stop.js';
import { registerTest } from './cmd-test.js';
import { registerTrace } from './cmd-trace.js';
import { EXIT } from './exit-codes.js';
import { reportError } from './report-error.js';

export interface GlobalOptions {
  debug: boolean;
  strict: boolean;
}

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function makeProgram(): Command {
  const program = new Command();
  program
    .name('kjx')
    .description('build a minimal headless Linux from kjx.yaml, boot it in QEMU, run and trace inside it')
    .version(pkg.version, '-V, --version')
    .option('--debug', 'show stack traces')
    .option('--strict', 'treat build warnings as errors (exit status 7)')
    .showHelpAfterError('(run `kjx --help` for usage)')
    .exitOverride();
  const globals = (): GlobalOptions => {
    const o = program.opts<{ debug?: boolean; strict?: boolean }>();
    return { debug: !!o.debug, strict: !!o.strict };
  };
  registerInit(program);
  registerBuild(program, globals);
  registerDoctor(program);
  registerInspect(program);
  registerDiff(program);
  registerRun(program, globals);
  registerBoot(program, globals);
  registerPs(program);
  registerSnapshot(program);
  registerStop(program);
  registerExec(program);
  registerTrace(program, globals);
  registerTest(program, globals);
  registerCluster(program, globals);
  registerCache(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = makeProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version are "errors" to commander; they already printed
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        e.code === 'commander.help'
      )
        return EXIT.ok;
      return EXIT.usage;
    }
    return reportError(e, argv.includes('--debug'));
  }
}
