/**
 * `kjx snapshot NAME [-o FILE] [--leave-running]`: save a running detached VM into one
 * file (docs/boot-time.md, "Detached VMs"); `kjx boot --restore FILE --name N` starts
 * it again. Like `virsh save`, the VM stops once saved, unless `--leave-running`.
 */
import type { Command } from 'commander';

export function registerSnapshot(program: Command): void {
  program
    .command('snapshot')
    .description(
      'save a running detached VM into a file (it stops, unless --leave-running); kjx boot --restore starts it again',
    )
    .argument('<name>', 'VM name (see kjx ps)')
    .option('-o, --output <file>', 'where to write the snapshot (default: NAME.kjxsnap)')
    .option('--leave-running', 'let the VM run on after saving it')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, o: { output?: string; leaveRunning?: boolean; json?: boolean }) => {
      const { requireVm } = await import('../vm/registry.js');
      const { saveDetached } = await import('../vm/detached-snapshot.js');
      const r = await saveDetached(requireVm(name), o.output ?? `${name}.kjxsnap`, {
        ...(o.leaveRunning ? { leaveRunning: true } : {}),
      });
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else
        console.log(
          `${name}: saved to ${r.file} (${(r.bytes / 1024 ** 2).toFixed(1)} MiB) in ${r.seconds.toFixed(2)} s; ${r.vm === 'running' ? 'still running' : 'stopped'}\n  next: kjx boot --restore ${r.file} --name ${name}`,
        );
    });
}
