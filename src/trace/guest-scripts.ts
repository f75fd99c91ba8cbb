/**
 * The shell `kjx trace` runs in the guest (busybox sh); the BPF tools' readiness
 * wrapper `kjx-bpf-ready` and the attach test it shares with the driver are in
 * guest/bpf-ready.ts.
 *
 * The driver starts the tracer, waits until it is attached, runs the workload (or
 * sleeps), stops the tracer (SIGINT: libbpf-tools and bpftrace print their results
 * then), and ships its files home on file descriptor 3, framed:
 *
 *     @@kjx-trace:file name=NAME bytes=N\n<N bytes>\n   (once per file)
 *     @@kjx-trace:end\n
 *
 * Everything else (the workload's stdout and stderr, the driver's own messages)
 * goes to stderr, so the two never mix. Under `kjx run` fd 3 is the `kjx.stdout`
 * virtio-serial port; under `--vm` it is the SSH channel's stdout.
 *
 * "Attached": libbpf-tools print their banner with stdio buffering (nothing arrives
 * before exit when stdout is a file), and offcputime prints none. What every BPF
 * tool does once attached is hold BPF link (or perf event) file descriptors and go
 * to sleep, so that is what the driver waits for: links present, the process
 * sleeping, and the count unchanged over two polls.
 *
 * The shell is src/trace/sh/trace-driver.sh; it includes the attach detection
 * kjx-bpf-ready has too (src/guest/sh/attach.sh).
 */
import { GENERIC_LOADER_LINK } from '../bpf/guest-paths.js';
import { ATTACH_TIMEOUT, TICK } from '../guest/bpf-ready.js';
import { readShFile, renderSh, type ShValues, shWords } from '../guest/sh-file.js';
import type { GuestTracer } from './tracers.js';

export const FRAME_PREFIX = '@@kjx-trace:';
/** Seconds a tracer may take to print its results after SIGINT before it gets SIGKILL. */
export const STOP_TIMEOUT = 120;
/** Seconds between SIGTERM and SIGKILL when --duration stops the workload. */
export const KILL_GRACE_S = 2;

export interface DriverOptions {
  /** The workload's argv; none: sleep `durationS`. */
  workload?: string[];
  /** Trace this long (without a workload), or at most this long (with one: then it is killed). */
  durationS?: number;
  /** When there is neither a workload nor a duration. */
  defaultDurationS?: number;
  /** The VM powers off afterwards: tracefs state need not be undone (seconds under TCG for many kprobes). */
  ephemeral?: boolean;
}

/** The values trace-driver.sh declares for one trace. */
export function traceDriverValues(t: GuestTracer, o: DriverOptions): ShValues {
  const stop = t.kind === 'helper' ? (o.ephemeral ? [...t.stop, '--keep'] : t.stop) : [];
  return {
    KJX_TRACER: t.tracer,
    KJX_VIA: t.via,
    KJX_KIND: t.kind,
    KJX_TRACER_ARGV: t.kind === 'process' ? shWords(t.argv) : '',
    KJX_READY_LINE: t.kind === 'process' ? (t.readyLine ?? '') : '',
    KJX_START_ARGV: t.kind === 'helper' ? shWords(t.start) : '',
    KJX_STOP_ARGV: shWords(stop),
    KJX_UNDO_ARGV: t.kind === 'helper' ? shWords(t.stop) : '',
    KJX_SERVICE: t.kind === 'service' ? t.service : '',
    KJX_WORKLOAD: o.workload && o.workload.length > 0 ? shWords(o.workload) : '',
    KJX_DURATION: o.durationS ?? '',
    KJX_DEFAULT_DURATION: o.defaultDurationS ?? 5,
    KJX_ATTACH_TIMEOUT: ATTACH_TIMEOUT,
    KJX_STOP_TIMEOUT: STOP_TIMEOUT,
    KJX_KILL_GRACE: KILL_GRACE_S,
    KJX_FRAME_PREFIX: FRAME_PREFIX,
    KJX_TICK: TICK,
    // a tracing.programs loader's maps, dumped by kjx-bpf-run before the stop signal
    KJX_DUMP_MAPS: t.kind !== 'helper' && t.dumpMaps ? GENERIC_LOADER_LINK : '',
  };
}

/**
 * The driver script for one trace (src/trace/sh/trace-driver.sh; the module comment
 * tells its protocol). It goes as a command, over SSH with --vm, so it goes compact
 * (no comments): dropbear takes commands up to 9000 bytes (MAX_CMD_LEN).
 */
export function traceDriverScript(t: GuestTracer, o: DriverOptions): string {
  return renderSh(readShFile(new URL('./sh/trace-driver.sh', import.meta.url)), traceDriverValues(t, o), {
    compact: true,
  });
}
