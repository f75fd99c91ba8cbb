/** `kjx ps [--json]`: the detached VMs that are running. */
import type { Command } from 'commander';

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
      const head = ['NAME', 'PID', 'ACCEL', 'SSH', 'BUILD', 'STARTED'];
      const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      for (const r of [head, ...rows])
        console.log(
          r
            .map((c, i) => c.padEnd(w[i]!))
            .join('  ')
            .trimEnd(),
        );
    });
}
