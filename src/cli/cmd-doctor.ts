/**
 * `kjx doctor [--install] [--for build,boot,test,bpf]`: which host tools are there, their
 * versions, and the apt-get line for what is missing. `--install` runs that line
 * (and `apt-get update` when apt has no lists) when root; otherwise it prints it.
 */
import type { Command } from 'commander';
import { aptHasLists } from '../sources/apt.js';
import { run } from '../util/exec.js';
import { aptInstallLine, probeTools, type ToolUse } from '../util/host-tools.js';
import { EXIT } from './exit-codes.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the host tools kjx needs and print how to install what is missing')
    .option(
      '--for <uses>',
      'what to check for: build, boot, test, bpf (tracing.programs), kernel (kernels built from source) (comma separated)',
      'build,boot,test',
    )
    .option('--install', 'install what is missing with apt-get (root only)')
    .option('--json', 'print the report as JSON')
    .action(async (o: { for: string; install?: boolean; json?: boolean }) => {
      const uses = o.for.split(',').map((s) => s.trim()) as ToolUse[];
      let status = probeTools(uses);
      let missing = status.filter((s) => !s.path);
      const lists = aptHasLists();
      const isRoot = process.getuid?.() === 0;
      if (o.install && (missing.length > 0 || !lists)) {
        if (!isRoot) {
          console.error('kjx: missing host tools, and installing them needs root. Run:');
          if (!lists) console.error('  sudo apt-get update');
          if (missing.length) console.error(`  sudo ${aptInstallLine(missing)}`);
          process.exitCode = EXIT.failed;
          return;
        }
        const env = { DEBIAN_FRONTEND: 'noninteractive' };
        if (!lists || missing.length > 0) {
          console.error('kjx: apt-get update');
          await run('apt-get update', 'apt-get', ['update', '-q'], { env });
        }
        if (missing.length > 0) {
          const line = aptInstallLine(missing);
          console.error(`kjx: ${line}`);
          const [, , ...args] = line.split(' ');
          await run('installing host tools', 'apt-get', ['install', ...args], { env });
        }
        status = probeTools(uses);
        missing = status.filter((s) => !s.path);
      }
      if (o.json) {
        console.log(
          JSON.stringify(
            {
              tools: status.map((s) => ({
                command: s.tool.command,
                package: s.tool.package,
                path: s.path ?? null,
                version: s.version ?? null,
                why: s.tool.why,
              })),
              aptLists: aptHasLists(),
              install: aptInstallLine(missing) || null,
            },
            null,
            2,
          ),
        );
      } else {
        const w = Math.max(...status.map((s) => s.tool.command.length));
        for (const s of status) {
          const mark = s.path ? 'ok     ' : 'MISSING';
          console.log(
            `${mark} ${s.tool.command.padEnd(w)}  ${s.path ? (s.version ?? '(version unknown)') : `package ${s.tool.package}`}  - ${s.tool.why}`,
          );
        }
        console.log(
          `${aptHasLists() ? 'ok     ' : 'MISSING'} apt package lists${aptHasLists() ? '' : ' (run: apt-get update)'}`,
        );
        if (missing.length) console.log(`\ninstall what is missing with:\n  ${aptInstallLine(missing)}`);
      }
      if (missing.length > 0 || !aptHasLists()) process.exitCode = EXIT.failed;
    });
}
