/**
 * `kjx cluster init|up|status|exec|ssh|down` (docs/cluster.md): flags in, the
 * lifecycle of src/cluster/lifecycle.ts, a table or JSON out. `-f FILE` names the
 * cluster file (default kjx-cluster.yaml); the cluster it names is the one acted on.
 * `kjx cluster supervise DIR` is the hidden entry of a cluster's supervisor.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import { EXIT, exitForVmOutcome } from './exit-codes.js';
import type { GlobalOptions } from './main.js';
import { accelFlag, addLimitOptions, limitFlags } from './vm-options.js';

type Flags = Record<string, unknown>;

async function clusterOf(o: Flags) {
  const { loadCluster } = await import('../cluster/file.js');
  return loadCluster(String(o.file));
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function printStatus(name: string, json: boolean): Promise<void> {
  const { clusterStatus } = await import('../cluster/lifecycle.js');
  const s = clusterStatus(name);
  if (json) {
    console.log(JSON.stringify(s, null, 2));
    return;
  }
  console.log(
    `cluster ${s.name}: ${s.up ? 'up' : 'not running'} (switch ${s.switch.running ? 'running' : 'down'})`,
  );
  if (s.partition.length > 0) console.log(`partition: ${s.partition.join(' ')} | the rest`);
  console.log(
    table([
      ['NODE', 'PID', 'ADDRESS', 'STATE', 'ROLE', 'SERVICES', 'LINK'],
      ...s.nodes.map((n) => [
        n.name,
        String(n.pid),
        n.address,
        n.state,
        n.role,
        n.engines.join(',') || '-',
        n.netem ? `delay ${n.netem.delayMs}ms loss ${n.netem.lossPct}%` : '-',
      ]),
    ]),
  );
}

export function registerCluster(program: Command, globals: () => GlobalOptions): void {
  const cluster = program
    .command('cluster')
    .description('several VMs on one private virtual LAN, from kjx-cluster.yaml (docs/cluster.md)');
  const withFile = (c: Command) => c.option('-f, --file <path>', 'cluster file', 'kjx-cluster.yaml');

  withFile(
    cluster.command('init').description('write a commented 3-node etcd kjx-cluster.yaml and its node spec'),
  )
    .option('--force', 'overwrite an existing file')
    .option('--swarm', 'a 3-node docker swarm (a manager, two workers) instead')
    .action(async (o: { file: string; force?: boolean; swarm?: boolean }) => {
      const ex = await import('../cluster/example.js');
      const [specName, specYaml, clusterYaml] = o.swarm
        ? [ex.SWARM_NODE_SPEC, ex.SWARM_NODE_SPEC_YAML, ex.SWARM_CLUSTER_YAML]
        : [ex.EXAMPLE_NODE_SPEC, ex.EXAMPLE_NODE_SPEC_YAML, ex.CLUSTER_EXAMPLE_YAML];
      const spec = join(dirname(o.file), specName);
      for (const f of [o.file, spec])
        if (existsSync(f) && !o.force)
          throw new KjxError('USAGE', `${f} already exists`, { hint: 'pass --force to overwrite it' });
      writeFileAtomic(spec, specYaml);
      writeFileAtomic(o.file, clusterYaml);
      console.log(`wrote ${o.file} and ${spec}; next: kjx cluster up`);
    });

  const up = withFile(cluster.command('up').description('boot every node in parallel; ends with a table'))
    .option('--accel <accel>', 'auto, kvm or tcg', 'auto')
    .action(async (o: Flags) => {
      const c = await clusterOf(o);
      const { clusterUp } = await import('../cluster/lifecycle.js');
      const { strict } = globals();
      await clusterUp(c, {
        ...limitFlags(o),
        accel: accelFlag(o.accel),
        warn: (w) => {
          if (strict) throw new KjxError('STRICT_WARNING', `${w.code}: ${w.message}`);
          console.error(`warning: ${w.message}`);
        },
        progress: (line) => console.error(line),
      });
      await printStatus(c.name, false);
    });
  addLimitOptions(up, { timeout: '600', silence: '300' }, 'every node is ready');

  withFile(cluster.command('status').description("the cluster's nodes, pids, addresses and states"))
    .option('--json', 'as JSON')
    .action(async (o: Flags) => printStatus((await clusterOf(o)).name, !!o.json));

  withFile(
    cluster
      .command('exec')
      .description("run a command on a node over SSH and exit with the command's status")
      .argument('<node>', 'node name')
      .argument('<command...>', 'the command and its arguments (after --)'),
  ).action(async (node: string, argv: string[], o: Flags) => {
    const { nodeGuest } = await import('../cluster/lifecycle.js');
    const g = nodeGuest((await clusterOf(o)).name, node);
    const r = await g.run({ argv }, { stdout: process.stdout, stderr: process.stderr });
    process.exitCode = r.outcome === 'exited' ? (r.status ?? EXIT.vmFailed) : exitForVmOutcome(r.outcome);
  });

  withFile(cluster.command('ssh').description('log in to a node').argument('<node>', 'node name')).action(
    async (node: string, o: Flags) => {
      const { nodeGuest } = await import('../cluster/lifecycle.js');
      process.exitCode = await nodeGuest((await clusterOf(o)).name, node).shell();
    },
  );

  withFile(
    cluster
      .command('kill')
      .description("a power cut: SIGKILL of the node's QEMU")
      .argument('<node>', 'node name'),
  ).action(async (node: string, o: Flags) => {
    const { killNode } = await import('../cluster/lifecycle.js');
    await killNode((await clusterOf(o)).name, node);
    console.error(`${node}: killed`);
  });

  const start = withFile(
    cluster
      .command('start')
      .description('boot a killed node again (an etcd member rejoins)')
      .argument('<node>', 'node name'),
  ).action(async (node: string, o: Flags) => {
    const { startNode } = await import('../cluster/lifecycle.js');
    const n = await startNode(await clusterOf(o), node, {
      ...limitFlags(o),
      warn: (w) => console.error(`warning: ${w.message}`),
    });
    console.error(`${node}: running (pid ${n.pid}, ${n.address})`);
  });
  addLimitOptions(start, { timeout: '600', silence: '300' }, 'the node is ready');

  withFile(
    cluster
      .command('partition')
      .description('cut these nodes off from the rest (they still reach each other)')
      .argument('<nodes...>', 'node names'),
  ).action(async (nodes: string[], o: Flags) => {
    const { partition } = await import('../cluster/lifecycle.js');
    await partition((await clusterOf(o)).name, nodes);
    console.error(`partitioned: ${nodes.join(' ')} | the rest`);
  });

  withFile(
    cluster
      .command('netem')
      .description("delay and loss on a node's link, each way (0 and 0 take them off)")
      .argument('<node>', 'node name')
      .option('--delay <ms>', 'delay each way in milliseconds', '0')
      .option('--loss <pct>', 'packets lost each way, in percent', '0'),
  ).action(async (node: string, o: Flags) => {
    const { netem } = await import('../cluster/lifecycle.js');
    await netem((await clusterOf(o)).name, node, Number(o.delay), Number(o.loss));
    console.error(`${node}: delay ${Number(o.delay)} ms, loss ${Number(o.loss)}% each way`);
  });

  withFile(cluster.command('heal').description('end a partition')).action(async (o: Flags) => {
    const { heal } = await import('../cluster/lifecycle.js');
    await heal((await clusterOf(o)).name);
    console.error('healed');
  });

  withFile(cluster.command('down').description('power every node off and stop the switch')).action(
    async (o: Flags) => {
      const { clusterDown } = await import('../cluster/lifecycle.js');
      const r = await clusterDown((await clusterOf(o)).name);
      for (const n of r.nodes) console.error(`${n.name}: ${n.how} (${n.seconds.toFixed(1)} s)`);
    },
  );

  withFile(
    cluster
      .command('timeline')
      .description("every node's boots and the cluster's events on one time axis, as an SVG")
      .option(
        '-o, --output <file>',
        'where to write it (default: timeline.svg in the cluster state directory)',
      ),
  )
    .option('--json', 'print the rows and marks as JSON as well')
    .action(async (o: Flags) => {
      const c = await clusterOf(o);
      const { writeClusterTimeline } = await import('../cluster/timeline-file.js');
      const r = writeClusterTimeline(c.name, o.output === undefined ? undefined : String(o.output));
      if (o.json) console.log(JSON.stringify(r.data, null, 2));
      console.error(`wrote ${r.path} (${r.data.timeline.rows.length} rows, ${r.data.marks.length} events)`);
    });

  cluster
    .command('supervise', { hidden: true })
    .argument('<dir>')
    .action(async (dir: string) => {
      const { runSupervisor } = await import('../cluster/supervisor.js');
      await runSupervisor(dir);
    });
}
