/**
 * `kjx trace TRACER [ARG] [--duration S] [--vm NAME] [-o DIR] [-f spec] [-- CMD ARGS...]`
 * Boots an ephemeral VM (or uses a detached one), starts the tracer, waits until it
 * is attached, runs CMD (or waits --duration), stops the tracer with SIGINT, brings
 * the raw output home and renders it (docs/tracing.md). Prints the text histogram or
 * the top entries and the paths; `--json` prints the summary.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { TRACER_ARGS, TRACER_HELP, TRACERS } from '../trace/tracers.js';
import { KjxError } from '../util/errors.js';
import type { Guest } from '../vm/guest.js';
import { buildWarn } from './build-warnings.js';
import type { GlobalOptions } from './main.js';
import {
  addLimitOptions,
  addMachineOptions,
  addSnapshotOptions,
  limitFlags,
  numberOption,
  prepareFromFlags,
  snapshotFlags,
} from './vm-options.js';

type Opts = Record<string, string | boolean | undefined>;

const TRACER_LINES = TRACERS.map((t) => {
  const name = [t, ...TRACER_ARGS[t]].join(' ');
  return `  ${name.padEnd(18)} ${TRACER_HELP[t]}`;
}).join('\n');
const EXAMPLES = [
  "  kjx trace runqlat --duration 3 -- sh -c 'while :; do :; done'",
  '  kjx trace funccount vfs_read -- cat /etc/os-release',
  '  kjx trace offcpu -- sleep 1',
  '  kjx trace syscalls --vm web --duration 5',
  '  kjx trace prog execs -- sh -c "ls /; uname -r"',
].join('\n');

/** `.kjx/traces/<tracer>-<UTC stamp>` next to the spec (or in the working directory). */
export function defaultTraceDir(base: string, tracer: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return join(base, '.kjx', 'traces', `${tracer}-${stamp}`);
}

export function registerTrace(program: Command, globals: () => GlobalOptions): void {
  addLimitOptions(
    addSnapshotOptions(
      addMachineOptions(
        program
          .command('trace')
          .description(
            'trace an ephemeral VM (or a detached one) while a command runs, and draw the result (docs/tracing.md)',
          )
          .argument(
            '<tracer>',
            'runqlat, syscalls, funccount PATTERN, exec, offcpu, profile, bpftrace, service NAME, prog NAME',
          )
          .argument(
            '[args...]',
            "the tracer's argument (funccount, service, prog), then the command to trace (after --)",
          )
          .option('-f, --file <path>', 'spec file', 'kjx.yaml')
          .option('--dist <dir>', 'artifact directory (built first if out of date)', 'dist')
          .option(
            '-o, --output <dir>',
            'where to write the results (default .kjx/traces/TRACER-STAMP next to the spec)',
          )
          .option(
            '--duration <seconds>',
            'trace this long (with a command: stop the command after this long)',
          )
          .option('--vm <name>', 'trace a running detached VM (kjx boot --detach) over SSH instead')
          .option(
            '--kernel <path>',
            'trace your own kernel with the image as built: a built kernel tree or a bzImage (docs/dev-kernel.md)',
          )
          .option('--modules <dir>', 'with a bzImage --kernel: its lib/modules/<release> directory')
          .option('-e, --program <text>', 'bpftrace: the program')
          .option('--script <file>', 'bpftrace: a program file on the host')
          .option('--backend <kind>', 'auto, bpf (libbpf-tools) or tracefs', 'auto'),
        'default: 512, 2048 when the image has bpftrace, more for container runtimes',
      ),
    ),
    { timeout: '900', silence: '0' },
    'the trace has finished',
  )
    .option('--json', 'print the summary as JSON on stdout')
    .addHelpText('after', () => `\nTracers:\n${TRACER_LINES}\n\nExamples:\n${EXAMPLES}\n`)
    .action(async (tracerName: string, rest: string[], o: Opts) => {
      const { checkTracerName, planTracer } = await import('../trace/tracers.js');
      const tracer = checkTracerName(tracerName);
      const nArgs = TRACER_ARGS[tracer].length;
      if (rest.length < nArgs)
        throw new KjxError('USAGE', `${tracer} needs ${TRACER_ARGS[tracer].join(' ')}`, {
          hint: `kjx trace ${tracer} ${TRACER_ARGS[tracer].join(' ')} [-- CMD ARGS...]`,
        });
      const arg = nArgs ? rest[0] : undefined;
      const workload = rest.slice(nArgs);
      const backend = String(o.backend);
      if (!['auto', 'bpf', 'tracefs'].includes(backend))
        throw new KjxError('USAGE', `--backend ${backend}: expected auto, bpf or tracefs`, {
          hint: 'auto picks libbpf-tools when the image has the tool, tracefs (the ftrace component) otherwise',
        });
      const durationS = o.duration === undefined ? undefined : numberOption('duration', o.duration, 1);
      if (durationS !== undefined && !Number.isInteger(durationS))
        throw new KjxError('USAGE', `--duration must be whole seconds, got "${o.duration}"`);
      let program = o.program === undefined ? undefined : String(o.program);
      if (o.script !== undefined) {
        if (program !== undefined)
          throw new KjxError('USAGE', 'give either -e PROGRAM or --script FILE, not both', {
            hint: "kjx trace bpftrace -e 'PROGRAM' or kjx trace bpftrace --script FILE.bt",
          });
        const scriptPath = resolve(String(o.script));
        try {
          program = readFileSync(scriptPath, 'utf8');
        } catch (e) {
          const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
          throw new KjxError('INPUT_NOT_FOUND', `--script: cannot read ${scriptPath} (${why})`, {
            hint: 'the bpftrace program is read on the host; give a path relative to the working directory',
            cause: e,
          });
        }
      }
      if (program !== undefined && tracer !== 'bpftrace')
        throw new KjxError('USAGE', `-e/--script go with the bpftrace tracer, not ${tracer}`, {
          hint: "kjx trace bpftrace -e 'PROGRAM' [-- CMD ARGS...]",
        });

      const specPath = String(o.file);
      const vmName = o.vm === undefined ? undefined : String(o.vm);
      if (vmName !== undefined && (o.kernel !== undefined || o.modules !== undefined))
        throw new KjxError(
          'USAGE',
          `--kernel/--modules with --vm ${vmName}: a running VM has its kernel already`,
          {
            hint: `boot it with your kernel (kjx boot --detach --kernel PATH), or trace an ephemeral VM without --vm`,
          },
        );
      const limits = limitFlags(o);
      const { loadSpecCached } = await import('../pipeline/spec-cache.js');
      const { collectTools, probeVmTools, programSources } = await import('../trace/image-tools.js');
      const attached = vmName ? (await import('../vm/detached.js')).attach(vmName) : undefined;
      const record = attached?.record;
      const spec = record
        ? existsSync(record.spec)
          ? await loadSpecCached(record.spec)
          : undefined
        : await loadSpecCached(specPath);
      const tools = attached ? await probeVmTools(attached) : collectTools(spec!);
      let serviceRun: string | undefined;
      if (tracer === 'service' && spec) {
        const names = Object.keys(spec.services);
        if (!names.includes(arg!)) {
          const { didYouMean } = await import('../spec/messages.js');
          throw new KjxError(
            'USAGE',
            `service: no service "${arg}" in ${record ? record.spec : specPath}${didYouMean(arg!, names)}`,
            {
              hint: names.length ? `services: ${names.join(', ')}` : 'the spec has no services:',
            },
          );
        }
        serviceRun = spec.services[arg!]!.run;
      }
      const plan = planTracer(
        {
          tracer,
          ...(arg !== undefined ? { arg } : {}),
          ...(program !== undefined ? { program } : {}),
          ...(serviceRun !== undefined ? { serviceRun } : {}),
          backend: backend as 'auto' | 'bpf' | 'tracefs',
        },
        tools,
      );
      const { traceDriverScript } = await import('../trace/guest-scripts.js');
      const script = traceDriverScript(plan, {
        ...(workload.length ? { workload } : {}),
        ...(durationS !== undefined ? { durationS } : {}),
        defaultDurationS: 5,
        ephemeral: !record,
      });
      const { claimTraceDir, prepareOutputDir, runDriver, renderTrace, runOutcomeError } = await import(
        '../trace/collect.js'
      );
      // -o DIR is checked before anything boots; the default one is claimed once there are results
      const givenDir = o.output === undefined ? undefined : resolve(String(o.output));
      if (givenDir) prepareOutputDir(givenDir);
      const outDir = () =>
        givenDir ??
        claimTraceDir(defaultTraceDir(record ? process.cwd() : dirname(resolve(specPath)), tracer));

      const json = !!o.json;
      let target: { vm?: string; spec?: string; buildId?: string };
      let guest: Guest;
      if (attached) {
        target = {
          vm: attached.name,
          ...(attached.record.buildId ? { buildId: attached.record.buildId } : {}),
        };
        guest = attached;
      } else {
        const warn = buildWarn(globals().strict);
        const p = await prepareFromFlags(o, warn, {
          spec: spec!,
          specPath,
          outDir: String(o.dist),
          memory: (wanted, image) => Math.max(wanted, image.traceMemoryMiB),
        });
        target = { spec: p.image.specPath, buildId: p.image.buildId };
        guest = await (await import('../vm/launch.js')).launch(p, { snapshots: snapshotFlags(o, warn) });
      }
      const driven = await runDriver(guest, script, process.stderr, limits);
      // the outcome first: a panic or timeout while results were sent leaves them cut short
      const failed = runOutcomeError(tracer, { ...driven.result, stateDir: guest.stateDir });
      if (failed) throw failed;
      // a program the verifier rejects is shown at its source line
      const sources = tracer === 'prog' ? programSources(spec, arg) : [];
      const start = driven.result.start?.how;
      const rendered = renderTrace(outDir(), plan, driven.frames, {
        target: { ...target, ...(start ? { start } : {}) },
        ...(workload.length ? { workload } : {}),
        ...(durationS !== undefined ? { durationS } : {}),
        services: driven.services,
        ...(sources.length ? { sources } : {}),
      });
      const s = rendered.summary;
      if (json) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      const lines = [`${tracer} via ${s.via}${s.kernel ? ` on ${s.kernel}` : ''}`];
      if (s.tracedS !== undefined)
        lines[0] += `, traced ${s.tracedS.toFixed(2)} s (attach took ${s.attachS?.toFixed(2)} s)`;
      if (s.workload?.killedAfterDuration)
        lines.push(`the command was stopped after --duration ${durationS} s`);
      else if (s.workload?.status) lines.push(`the command exited with status ${s.workload.status}`);
      if (rendered.text) lines.push('', rendered.text);
      else lines.push('', '(no events)');
      lines.push('', ...Object.entries(s.files).map(([k, p]) => `${k.padEnd(14)} ${p}`));
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
