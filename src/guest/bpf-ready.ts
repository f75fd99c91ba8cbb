/**
 * `kjx-bpf-ready`, the wrapper the BPF components (libbpf-tools, bpftrace) install
 * for tracer services. It and `kjx trace`'s driver (trace/guest-scripts.ts) share
 * the shell functions that tell when a BPF tool is attached (sh/attach.sh).
 *
 * "Attached": libbpf-tools print their banner with stdio buffering (nothing arrives
 * before exit when stdout is a file), and offcputime prints none. What every BPF
 * tool does once attached is hold BPF link (or perf event) file descriptors and go
 * to sleep, so that is what the wrapper waits for: links present, the process
 * sleeping, and the count unchanged over two polls.
 */
import { STATE_DIR } from './layout.js';
import { readShFile, renderSh } from './sh-file.js';

/** The service wrapper: runs a BPF tool and signals readiness once it is attached. */
export const BPF_READY = '/usr/lib/kjx/trace/kjx-bpf-ready';
export const BPF_READY_LINK = '/usr/sbin/kjx-bpf-ready';
/** Seconds a tracer may take to attach (BPF verification under TCG takes a few). */
export const ATTACH_TIMEOUT = 120;
/** The FIFO nobody writes: the guest scripts' builtin sleep (made by stage 1). */
export const TICK = `${STATE_DIR}/tick`;

/** /usr/lib/kjx/trace/kjx-bpf-ready (sh/kjx-bpf-ready.sh): for `ready: signal` (and `stopSignal: INT`) tracer services. */
export function bpfReadyScript(): string {
  return renderSh(readShFile(new URL('./sh/kjx-bpf-ready.sh', import.meta.url)), {
    KJX_ATTACH_TIMEOUT: ATTACH_TIMEOUT,
    KJX_TICK: TICK,
  });
}
