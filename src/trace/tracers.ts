/**
 * The tracers `kjx trace` knows, and how each one runs in a guest: which program
 * (a libbpf-tools binary, bpftrace, or the `kjx-ftrace` helper over tracefs), how it
 * is stopped, and what its output looks like. Choosing is pure: it takes what the
 * image has (from the spec, or probed in a running VM) and returns a plan, or a
 * KjxError that says which component to add.
 */

import { PROG_RUNNER, READY_LINE } from '../bpf/guest-paths.js';
import { FTRACE_HELPER_LINK } from '../guest/ftrace-helper.js';
import { didYouMean } from '../spec/messages.js';
import { KjxError } from '../util/errors.js';

export const TRACERS = [
  'runqlat',
  'syscalls',
  'funccount',
  'exec',
  'offcpu',
  'profile',
  'bpftrace',
  'service',
  'prog',
] as const;
export type TracerName = (typeof TRACERS)[number];

/** One line of help per tracer (also the `kjx trace --help` text). */
export const TRACER_HELP: Record<TracerName, string> = {
  runqlat: 'run queue latency histogram (libbpf-tools runqlat; tracefs synthetic events without it)',
  syscalls: 'system calls per process and syscall (tracefs raw_syscalls hist; syscount with --backend bpf)',
  funccount: 'calls of kernel functions matching PATTERN (a name or glob), per process (tracefs kprobes)',
  exec: 'new processes (libbpf-tools execsnoop; tracefs sched_process_exec without it)',
  offcpu: 'off-CPU time by kernel and user stack (libbpf-tools offcputime) -> flame graph',
  profile: 'on-CPU stacks sampled at 99 Hz (bpftrace) -> flame graph',
  bpftrace: '-e PROGRAM or --script FILE: its maps and histograms',
  service: "stop the image's tracer service NAME with its stop signal and collect its log",
  prog: 'your own eBPF program NAME of tracing.programs: its maps (maps.json), histograms, tables, events',
};

/** Positional arguments each tracer takes before the workload command. */
export const TRACER_ARGS: Record<TracerName, string[]> = {
  runqlat: [],
  syscalls: [],
  funccount: ['PATTERN'],
  exec: [],
  offcpu: [],
  profile: [],
  bpftrace: [],
  service: ['NAME'],
  prog: ['NAME'],
};

/** What an image offers to tracers. */
export interface ImageTools {
  components: string[];
  /** The libbpf-tools installed (file names in /usr/sbin). */
  libbpfTools: string[];
  /** Set when probed in a running detached VM (its name): a missing piece needs a new boot there. */
  vm?: string;
  /** The image's own eBPF programs (tracing.programs) and their loaders. */
  programs?: { name: string; loader: 'generic' | 'c' | 'go' }[];
}

export type Backend = 'auto' | 'bpf' | 'tracefs';

export interface TraceRequest {
  tracer: TracerName;
  /** funccount's PATTERN, service's NAME, prog's NAME. */
  arg?: string;
  /** bpftrace program text (`-e` or the content of `--script`). */
  program?: string;
  /** The `run:` of the service named by `service NAME`, when the spec is known (guesses the output format). */
  serviceRun?: string;
  backend?: Backend;
}

/** How the raw output of a tracer reads (src/trace/results.ts turns each into results). */
export type OutputFormat =
  | 'libbpf-hist' // libbpf-tools log2 histograms (runqlat, biolatency)
  | 'offcpu-stacks' // offcputime's multi-line stacks
  | 'execsnoop' // execsnoop's table
  | 'syscount' // syscount's table
  | 'ftrace-hist' // a tracefs hist with one .log2 key
  | 'ftrace-funccount' // "### function F" + a hist per function
  | 'ftrace-syscalls' // a hist keyed by process and syscall
  | 'ftrace-exec' // the trace buffer with sched_process_exec lines
  | 'bpftrace-stacks' // bpftrace's @[kstack, ustack, comm] map
  | 'bpftrace' // bpftrace maps and hists
  | 'bpf-prog' // a tracing.programs loader: kjx-bpf-run's JSON lines and map dump (src/bpf/)
  | 'text'; // unknown (a service's log): kept raw, histograms found if any

/**
 * What runs in the guest. `process`: a program started in the background, attached
 * when it holds BPF links and sleeps, stopped with SIGINT (libbpf-tools and bpftrace
 * print their results then). `helper`: synchronous start and stop commands whose
 * stop prints the results. `service`: an image service stopped with its stop signal.
 */
export type GuestTracer = {
  tracer: TracerName;
  /** What produces the data, for the summary: `libbpf-tools runqlat`, `tracefs`, ... */
  via: string;
  format: OutputFormat;
  /** The unit of counts in stacks (flame graphs) or histograms. */
  unit?: string;
} & (
  | {
      kind: 'process';
      argv: string[];
      /** A line the program prints (line-buffered) once attached; otherwise attach is read from /proc. */
      readyLine?: string;
      /** Before the stop signal, `kjx-bpf-run --dump-maps` writes the maps it holds (C and Go loaders). */
      dumpMaps?: boolean;
    }
  | { kind: 'helper'; start: string[]; stop: string[] }
  | {
      kind: 'service';
      service: string;
      /** Before the stop: `kjx-bpf-run --dump-maps` of the service's processes (a kjx-prog service). */
      dumpMaps?: boolean;
    }
);

/** The profile tracer's bpftrace program. */
export const PROFILE_PROGRAM = 'profile:hz:99 { @[kstack, ustack, comm] = count(); }';
/**
 * What our bpftrace programs print from BEGIN, which bpftrace runs once every probe
 * is attached (with `-B line` it arrives at once).
 */
export const BPFTRACE_READY = 'kjx: bpftrace attached';

/**
 * How to get a missing piece into the traced image: a spec's image is rebuilt by
 * `kjx trace` itself; a detached VM keeps running the image it booted until it is
 * booted again.
 */
function rebuildHint(tools: ImageTools): string {
  return tools.vm
    ? `, then rebuild and boot the VM again (kjx stop ${tools.vm}; kjx boot --detach -n ${tools.vm}): VM ${tools.vm} runs the image it was booted with`
    : ' (kjx trace rebuilds it), or trace another image with -f';
}

/** Missing-component errors share their shape: what needs what, and what to add. */
function needs(tools: ImageTools, what: string, component: string, extra = ''): KjxError {
  return new KjxError('TRACE_UNAVAILABLE', `${what} needs ${component}${extra}; the image does not have it`, {
    hint: `add ${component} to components in kjx.yaml${rebuildHint(tools)}`,
  });
}

/** `kjx trace TRACER`: a usage error with the list, and a did-you-mean, for unknown names. */
export function checkTracerName(name: string): TracerName {
  if ((TRACERS as readonly string[]).includes(name)) return name as TracerName;
  throw new KjxError('USAGE', `unknown tracer "${name}"${didYouMean(name, TRACERS)}`, {
    hint: `tracers: ${TRACERS.join(', ')} (kjx trace --help)`,
  });
}

/** A kernel function name or glob as set_ftrace_filter takes it (no spaces, no shell). */
const FUNC_PATTERN = /^[A-Za-z0-9_.*?[\]!-]+$/;

/** Choose how to run a tracer in an image with these tools. */
export function planTracer(req: TraceRequest, tools: ImageTools): GuestTracer {
  const has = (c: string) => tools.components.includes(c);
  const tool = (t: string) => has('libbpf-tools') && tools.libbpfTools.includes(t);
  const ftrace = has('ftrace');
  const backend = req.backend ?? 'auto';
  const helper = (name: string, ...args: string[]) => ({
    start: [FTRACE_HELPER_LINK, 'start', name, ...args],
    stop: [FTRACE_HELPER_LINK, 'stop', name],
  });
  const libbpf = (t: string, tracer: string, fallback: boolean) => {
    if (tool(t)) return true;
    if (backend === 'bpf' || (backend === 'auto' && !(fallback && ftrace))) {
      if (has('libbpf-tools'))
        throw new KjxError(
          'TRACE_UNAVAILABLE',
          `${tracer} needs the libbpf-tools program ${t}, which the image leaves out`,
          {
            hint: `add ${t} to tracing.libbpfTools in kjx.yaml${fallback ? ' (or add the ftrace component for the tracefs version)' : ''}${rebuildHint(tools)}`,
          },
        );
      throw needs(tools, tracer, 'libbpf-tools', fallback ? ' (or ftrace, for the tracefs version)' : '');
    }
    return false;
  };
  const needFtrace = (what: string) => {
    if (!ftrace) throw needs(tools, what, 'ftrace');
  };

  switch (req.tracer) {
    case 'runqlat':
      if (backend !== 'tracefs' && libbpf('runqlat', 'runqlat', true))
        return {
          tracer: 'runqlat',
          kind: 'process',
          argv: ['runqlat'],
          via: 'libbpf-tools runqlat',
          format: 'libbpf-hist',
          unit: 'usecs',
        };
      needFtrace('runqlat (tracefs version)');
      return {
        tracer: 'runqlat',
        kind: 'helper',
        ...helper('runqlat'),
        via: 'tracefs synthetic event (wakeup -> switch)',
        format: 'ftrace-hist',
        unit: 'usecs',
      };
    case 'syscalls':
      // auto: tracefs when the image has ftrace, else libbpf-tools syscount when it has that
      if (backend === 'bpf' || (backend === 'auto' && !ftrace && tool('syscount'))) {
        libbpf('syscount', 'syscalls --backend bpf', false);
        return {
          tracer: 'syscalls',
          kind: 'process',
          argv: ['syscount', '-P'],
          via: 'libbpf-tools syscount -P',
          format: 'syscount',
        };
      }
      if (!ftrace)
        throw needs(tools, 'syscalls', 'ftrace', ' (or libbpf-tools with syscount, for --backend bpf)');
      return {
        tracer: 'syscalls',
        kind: 'helper',
        ...helper('syscalls'),
        via: 'tracefs raw_syscalls:sys_enter hist',
        format: 'ftrace-syscalls',
      };
    case 'funccount': {
      const pattern = req.arg ?? '';
      if (!FUNC_PATTERN.test(pattern))
        throw new KjxError('USAGE', `funccount: "${pattern}" is not a kernel function name or glob`, {
          hint: "for example: kjx trace funccount vfs_read, or kjx trace funccount 'tcp_*'",
        });
      needFtrace('funccount');
      return {
        tracer: 'funccount',
        kind: 'helper',
        ...helper('funccount', pattern),
        via: 'tracefs kprobes + hist triggers',
        format: 'ftrace-funccount',
      };
    }
    case 'exec':
      if (backend !== 'tracefs' && libbpf('execsnoop', 'exec', true))
        return {
          tracer: 'exec',
          kind: 'process',
          argv: ['execsnoop'],
          via: 'libbpf-tools execsnoop',
          format: 'execsnoop',
        };
      needFtrace('exec (tracefs version)');
      return {
        tracer: 'exec',
        kind: 'helper',
        ...helper('exec'),
        via: 'tracefs sched_process_exec',
        format: 'ftrace-exec',
      };
    case 'offcpu':
      if (backend === 'tracefs')
        throw new KjxError('USAGE', 'offcpu has no tracefs version (it needs BPF stack maps)', {
          hint: 'drop --backend tracefs (offcpu runs libbpf-tools offcputime), or use profile (bpftrace) for on-CPU stacks',
        });
      libbpf('offcputime', 'offcpu', false);
      return {
        tracer: 'offcpu',
        kind: 'process',
        argv: ['offcputime'],
        via: 'libbpf-tools offcputime',
        format: 'offcpu-stacks',
        unit: 'us',
      };
    case 'profile':
      if (!has('bpftrace')) throw needs(tools, 'profile', 'bpftrace');
      return {
        tracer: 'profile',
        kind: 'process',
        argv: [
          'bpftrace',
          '-B',
          'line',
          '-e',
          `BEGIN { printf("${BPFTRACE_READY}\\n"); } ${PROFILE_PROGRAM}`,
        ],
        readyLine: BPFTRACE_READY,
        via: 'bpftrace profile:hz:99',
        format: 'bpftrace-stacks',
        unit: 'samples',
      };
    case 'bpftrace':
      if (!req.program)
        throw new KjxError('USAGE', 'bpftrace needs a program: -e PROGRAM or --script FILE', {
          hint: "for example: kjx trace bpftrace -e 'tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }'",
        });
      if (!has('bpftrace')) throw needs(tools, 'bpftrace', 'bpftrace');
      return {
        tracer: 'bpftrace',
        kind: 'process',
        argv: ['bpftrace', '-e', req.program],
        via: 'bpftrace',
        format: 'bpftrace',
      };
    case 'prog': {
      const name = req.arg ?? '';
      const progs = tools.programs ?? [];
      const p = progs.find((x) => x.name === name);
      if (!p)
        throw new KjxError(
          'TRACE_UNAVAILABLE',
          `prog: the image has no program "${name}"${didYouMean(
            name,
            progs.map((x) => x.name),
          )}`,
          {
            hint: progs.length
              ? `programs of this image: ${progs.map((x) => x.name).join(', ')}`
              : `add it to tracing.programs in kjx.yaml${rebuildHint(tools)}`,
          },
        );
      const via = { generic: 'kjx-bpf-run', c: 'C loader', go: 'Go loader, cilium/ebpf' }[p.loader];
      return {
        tracer: 'prog',
        kind: 'process',
        argv: [PROG_RUNNER, name],
        ...(p.loader === 'generic' ? { readyLine: READY_LINE } : { dumpMaps: true }),
        via: `tracing.programs ${name} (${via})`,
        format: 'bpf-prog',
      };
    }
    case 'service': {
      const name = req.arg ?? '';
      if (!/^[a-z0-9][a-z0-9_.-]{0,63}$/.test(name))
        throw new KjxError('USAGE', `service: "${name}" is not a service name`, {
          hint: 'kjx trace service NAME, NAME as in services: of kjx.yaml',
        });
      const run = req.serviceRun ?? '';
      const format: OutputFormat = /\bkjx-prog\b/.test(run)
        ? 'bpf-prog'
        : /\boffcputime\b/.test(run)
          ? 'offcpu-stacks'
          : /\b(runqlat|biolatency|cpudist|hardirqs|softirqs|funclatency|fsdist|ext4dist|xfsdist|btrfsdist|nfsdist|tcprtt|bitesize)\b/.test(
                run,
              )
            ? 'libbpf-hist'
            : /\bbpftrace\b/.test(run)
              ? 'bpftrace'
              : 'text';
      return {
        tracer: 'service',
        kind: 'service',
        service: name,
        ...(format === 'bpf-prog' ? { dumpMaps: true } : {}),
        via: `service ${name}`,
        format,
        ...(format === 'offcpu-stacks' ? { unit: 'us' } : {}),
      };
    }
  }
}
