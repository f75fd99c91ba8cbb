/** `kjx ps [--json]`: the detached VMs that are running. */
import type { Command } from 'commander';
import { tableLines } from './table.js';

export function registerPs(program: Command): void {
  program
    .command('ps')
    .description('list running VMs started with kjx boot --detach')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { listVms } = await import('../vm/registry.js');
      const vms = listVms();
      if (o.json) {
        console.log(JSON.stringify(vms, null, 2));
        return;
      }
      if (vms.length === 0) {
        console.log('no running VMs');
        return;
      }
      const rows = vms.map((v) => [
        v.name,
        String(v.pid),
        v.accel,
        v.ports.ssh ? `127.0.0.1:${v.ports.ssh}` : '-',
        v.buildId ?? '-',
        v.startedAt,
      ]);
      for (const line of tableLines([['NAME', 'PID', 'ACCEL', 'SSH', 'BUILD', 'STARTED'], ...rows]))
        console.log(line);
    });
}
