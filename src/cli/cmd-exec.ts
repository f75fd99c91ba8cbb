/**
 * `kjx exec NAME -- CMD ARGS...` and `kjx ssh NAME [-- CMD ARGS...]`: over the guest's
 * dropbear, key login, host key pinned from the boot log. Both exit with the remote
 * command's status.
 */
import type { Command } from 'commander';
import type { VmRecord } from '../vm/registry.js';

async function target(name: string, identity: string | undefined): Promise<VmRecord> {
  const { requireVm } = await import('../vm/registry.js');
  const rec = requireVm(name);
  return identity ? { ...rec, identity } : rec;
}

export function registerExec(program: Command): void {
  program
    .command('exec')
    .description('run a command in a detached VM over SSH and exit with its status')
    .argument('<name>', 'VM name (see kjx ps)')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('-u, --user <user>', 'guest user', 'root')
    .option('-i, --identity <file>', 'private key (default: the project key kjx made)')
    .action(async (name: string, argv: string[], o: { user: string; identity?: string }) => {
      const { sshExec } = await import('../vm/ssh-client.js');
      process.exitCode = await sshExec(
        await target(name, o.identity),
        argv,
        { stdout: process.stdout, stderr: process.stderr },
        o.user,
      );
    });
  program
    .command('ssh')
    .description('log in to a detached VM (or run a command, like exec)')
    .argument('<name>', 'VM name (see kjx ps)')
    .argument('[command...]', 'optional command (after --)')
    .option('-u, --user <user>', 'guest user', 'root')
    .option('-i, --identity <file>', 'private key (default: the project key kjx made)')
    .action(async (name: string, argv: string[], o: { user: string; identity?: string }) => {
      const { sshExec, sshShell } = await import('../vm/ssh-client.js');
      const rec = await target(name, o.identity);
      process.exitCode = argv.length
        ? await sshExec(rec, argv, { stdout: process.stdout, stderr: process.stderr }, o.user)
        : await sshShell(rec, o.user);
    });
}
