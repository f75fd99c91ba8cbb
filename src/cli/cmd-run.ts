/**
 * `kjx run [-f spec] [--timeout S] [--timing] [--json] [--mount HOST:GUEST] -- CMD ARGS...`
 * Boots an ephemeral VM from the built image, runs CMD, streams its stdout and stderr,
 * and exits with CMD's own status (or 123 panic, 124 timeout, 125 VM failure).
 */
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import { KjxError } from '../util/errors.js';
import type { BootTiming, Phases, ServiceEvent } from '../vm/boot-phases.js';
import type { Guest, GuestRunResult } from '../vm/guest.js';
import { buildWarn } from './build-warnings.js';
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

const collect = (v: string, prev: string[]) => [...prev, v];

/** Services in the order they changed state (start, ready, stop), with guest uptimes. */
export function formatServices(events: ServiceEvent[]): string {
  if (events.length === 0) return '';
  const w = Math.max(...events.map((e) => e.name.length));
  return [
    'services (guest uptime):',
    ...events.map((e) => `  ${e.uptime.toFixed(3).padStart(8)}  ${e.name.padEnd(w)}  ${e.state}`),
  ].join('\n');
}

export function formatPhases(p: Phases): string {
  const rows: [string, number | undefined][] = [
    ['restored', p.restored],
    ['kernel start', p.kernelStart],
    ['init exec', p.initExec],
    ['stage 2', p.stage2],
    ['services ready', p.ready],
    ['command done', p.commandDone],
    ['QEMU exit', p.qemuExit],
  ];
  const lines = ['boot phases (seconds since QEMU start):'];
  let prev = 0;
  for (const [name, t] of rows) {
    if (t === undefined) continue;
    lines.push(`  ${name.padEnd(15)} ${t.toFixed(3).padStart(8)}  (+${(t - prev).toFixed(3)})`);
    prev = t;
  }
  return lines.join('\n');
}

/** What `kjx run --json` and `kjx test --json` report of a run: how it ended, its boot, where its files are. */
export interface RunReport extends GuestRunResult, BootTiming {
  stateDir: string;
  accel: 'kvm' | 'tcg';
}

export function runReport(guest: Guest, r: GuestRunResult): RunReport {
  return { ...r, ...guest.timing(), stateDir: guest.stateDir, accel: guest.accel };
}

/** `--timing`'s report: boot phases, service state changes, the accelerator and why. */
export function timingReport(
  r: { phases: Phases; services: ServiceEvent[] },
  accel: { accel: string; reason: string },
): string {
  const services = formatServices(r.services);
  return `${formatPhases(r.phases)}${services ? `\n${services}` : ''}\naccel: ${accel.accel} (${accel.reason})`;
}

/** The console lines a failed run shows, and where the whole log is. */
export function consoleExcerpt(stateDir: string, excerpt: string): string {
  return `--- console (last lines; full log: ${stateDir}/console.log) ---\n${excerpt}\n---`;
}

export function registerRun(program: Command, globals: () => GlobalOptions): void {
  addLimitOptions(
    addSnapshotOptions(
      addVmOptions(
        program
          .command('run')
          .description('boot an ephemeral VM, run one command in it and exit with its status')
          .argument('<command...>', 'the command and its arguments (put them after --)'),
      ),
    ),
    { timeout: '600', silence: '120' },
    'the command has finished',
  )
    .option('--mount <host:guest>', 'copy a host file or directory into the guest (repeatable)', collect, [])
    .option('-e, --env <key=value>', 'environment variable for the command (repeatable)', collect, [])
    .option('-C, --cwd <dir>', 'working directory of the command in the guest', '/')
    .option(
      '--timing',
      'print the boot phases on stderr and draw them into boot-timeline.svg (boots: restores no snapshot)',
    )
    .option('--json', 'print one JSON result on stdout (the command output is inside it)')
    .action(async (argv: string[], o: Record<string, string | string[] | boolean | undefined>) => {
      const env: Record<string, string> = {};
      for (const kv of o.env as string[]) {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new KjxError('USAGE', `--env ${kv}: expected KEY=VALUE`);
        env[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      const { parseMount } = await import('../vm/payload.js');
      const mounts = (o.mount as string[]).map(parseMount);
      const limits = limitFlags(o);

      const warn = buildWarn(globals().strict);
      const p = await prepareFromFlags(o, warn);
      const { launch } = await import('../vm/launch.js');
      // --timing times a boot: it boots, and may still save a snapshot
      const snapshots = { ...snapshotFlags(o, warn), ...(o.timing ? { restore: false } : {}) };
      const guest = await launch(p, { snapshots });
      for (const m of mounts) await guest.copyIn(m.host, m.guest);
      const json = !!o.json;
      const outBuf: Buffer[] = [];
      const errBuf: Buffer[] = [];
      const stdout = json ? new PassThrough().on('data', (b: Buffer) => outBuf.push(b)) : process.stdout;
      const stderr = json ? new PassThrough().on('data', (b: Buffer) => errBuf.push(b)) : process.stderr;
      const ran = await guest.run({ argv, env, cwd: String(o.cwd) }, { stdout, stderr, ...limits });
      const r = runReport(guest, ran);
      const code = r.outcome === 'exited' ? (r.status ?? EXIT.vmFailed) : exitForVmOutcome(r.outcome);
      const timeline = o.timing
        ? (await import('./timeline-file.js')).writeBootTimeline(r.stateDir, r, {
            title: `${p.image.name} boot timeline (kjx run -- ${argv.join(' ')})`,
            accel: p.accel.accel,
          })
        : undefined;
      if (json) {
        process.stdout.write(
          `${JSON.stringify(
            {
              ...r,
              ...(timeline ? { bootTimeline: timeline } : {}),
              exitCode: code,
              accelReason: p.accel.reason,
              stdout: Buffer.concat(outBuf).toString('utf8'),
              stderr: Buffer.concat(errBuf).toString('utf8'),
            },
            null,
            2,
          )}\n`,
        );
      } else {
        if (r.outcome !== 'exited') {
          const what = {
            panic: 'guest kernel panic',
            timeout: 'timeout',
            silence: 'timeout (silence)',
            'vm-failed': 'VM failure',
          }[r.outcome];
          console.error(`kjx: ${what}: ${r.message}`);
          if (r.excerpt) console.error(consoleExcerpt(r.stateDir, r.excerpt));
        }
        if (o.timing) {
          console.error(timingReport(r, p.accel));
          console.error(`boot timeline: ${timeline}`);
        }
      }
      process.exitCode = code;
    });
}
