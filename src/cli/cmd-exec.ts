/**
 * `kjx exec NAME -- CMD ARGS...` and `kjx ssh NAME [-- CMD ARGS...]`: a command in a
 * detached VM's Guest (over the guest's dropbear, key login, host key pinned from the
 * boot log). Both exit with the remote command's status.
 */
import type { Command } from 'commander';
import { EXIT, exitForVmOutcome } from './exit-codes.js';

type Who = { user: string; identity?: string };

/** Run argv in the named VM with our stdout and stderr; its exit status. */
async function execIn(name: string, argv: string[], o: Who): Promise<number> {
  const { attach } = await import('../vm/detached.js');
  const guest = attach(name, { user: o.user, ...(o.identity ? { identity: o.identity } : {}) });
  const r = await guest.run({ argv }, { stdout: process.stdout, stderr: process.stderr });
  return r.outcome === 'exited' ? (r.status ?? EXIT.vmFailed) : exitForVmOutcome(r.outcome);
}

export function registerExec(program: Command): void {
  program
    .command('exec')
    .description('run a command in a detached VM over SSH and exit with its status')
    .argument('<name>', 'VM name (see kjx ps)')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('-u, --user <user>', 'guest user', 'root')
    .option('-i, --identity <file>', 'private key (default: the project key kjx made)')
    .action(async (name: string, argv: string[], o: Who) => {
      process.exitCode = await execIn(name, argv, o);
    });
  program
    .command('ssh')
    .description('log in to a detached VM (or run a command, like exec)')
    .argument('<name>', 'VM name (see kjx ps)')
    .argument('[command...]', 'optional command (after --)')
    .option('-u, --user <user>', 'guest user', 'root')
    .option('-i, --identity <file>', 'private key (default: the project key kjx made)')
    .action(async (name: string, argv: string[], o: Who) => {
      if (argv.length) {
        process.exitCode = await execIn(name, argv, o);
        return;
      }
      const { attach } = await import('../vm/detached.js');
      process.exitCode = await attach(name, {
        user: o.user,
        ...(o.identity ? { identity: o.identity } : {}),
      }).shell();
    });
}
