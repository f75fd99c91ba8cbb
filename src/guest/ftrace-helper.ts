/**
 * `kjx-ftrace`: the guest helper the `ftrace` component installs. Plain busybox sh
 * over tracefs (Documentation/trace/ftrace.rst, histogram.rst, kprobetrace.rst):
 *
 *   kjx-ftrace start funccount PATTERN   kprobe + hist trigger on each function
 *                                        matching PATTERN (set_ftrace_filter globs)
 *   kjx-ftrace start runqlat             wakeup → switch latency through a synthetic
 *                                        event, a log2 hist of it (usecs)
 *   kjx-ftrace start syscalls            raw_syscalls:sys_enter hist by process and syscall
 *   kjx-ftrace start exec                sched_process_exec events into the trace buffer
 *   kjx-ftrace stop NAME [--keep]        print what was collected on stdout, undo everything
 *                                        (--keep: leave it, for a VM about to power off;
 *                                        removing 70 kprobes takes seconds under TCG)
 *
 * The Debian cloud kernel has no function profiler (CONFIG_FUNCTION_PROFILER is
 * off), so funccount counts through kprobes with hist triggers, which also gives
 * the count per process. Everything kjx creates is named `kjx*`, so `stop` removes
 * exactly that and nothing another user set up. The shell is src/guest/sh/kjx-ftrace.sh.
 */
import { readShFile, renderSh } from './sh-file.js';

/** Where the ftrace component puts the helper, and the PATH link to it. */
export const FTRACE_HELPER = '/usr/lib/kjx/trace/kjx-ftrace';
export const FTRACE_HELPER_LINK = '/usr/sbin/kjx-ftrace';
/** At most this many functions per funccount pattern (each one is a kprobe). */
export const FUNCCOUNT_MAX = 200;

/** The private tracefs instance of `exec` (its own buffer and tracing_on; the global ones stay as they are). */
export const EXEC_INSTANCE = 'kjx-exec';

/** The helper script (src/guest/sh/kjx-ftrace.sh). */
export function ftraceHelperScript(): string {
  return renderSh(readShFile(new URL('./sh/kjx-ftrace.sh', import.meta.url)), {
    KJX_FUNCCOUNT_MAX: FUNCCOUNT_MAX,
    KJX_EXEC_INSTANCE: EXEC_INSTANCE,
  });
}
