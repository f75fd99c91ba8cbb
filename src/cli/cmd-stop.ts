/** `kjx stop NAME... | --all [--timeout S]`: shut detached VMs down cleanly, killing them after the deadline. */
import type { Command } from 'commander';
import { KjxError } from '../util/errors.js';
import { numberOption } from './vm-options.js';

export function registerStop(program: Command): void {
  program
    .command('stop')
    .description('stop detached VMs: ACPI power-off, then quit, then kill after the deadline')
    .argument('[names...]', 'VM names')
    .option('-a, --all', 'stop every running VM')
    .option('--timeout <seconds>', 'how long the guest gets to power off cleanly', '10')
    .action(async (names: string[], o: { all?: boolean; timeout: string }) => {
      const { listVms, requireVm } = await import('../vm/registry.js');
      const { stopVm } = await import('../vm/detached.js');
      if (!o.all && names.length === 0) throw new KjxError('USAGE', 'name a VM to stop, or pass --all');
      const vms = o.all ? listVms() : names.map(requireVm);
      const deadline = numberOption('timeout', o.timeout, 0);
      const results = await Promise.all(vms.map((v) => stopVm(v, deadline)));
      for (const r of results) console.log(`${r.name}: stopped (${r.how}) in ${r.seconds.toFixed(2)} s`);
    });
}
