/**
 * Documented exit statuses of `kjx` (docs/cli.md lists them). `kjx run`/`exec`
 * exit with the guest command's own status; these are for kjx's own failures.
 */
import type { ErrorCode } from '../util/errors.js';

export const EXIT = {
  ok: 0,
  /** A check failed (e.g. `kjx doctor` found missing tools). */
  failed: 1,
  usage: 2,
  /** kjx.yaml, kjx.lock or a host input named by them is wrong. */
  spec: 3,
  /** Debian packages could not be resolved or fetched, or a host tool is missing. */
  packages: 4,
  /** The content is wrong: a .deb, ELF file, library or module problem. */
  content: 5,
  /** A host subprocess failed. */
  subprocess: 6,
  internal: 70,
  /** `kjx run`: the guest kernel panicked, oopsed or hit a BUG. */
  panic: 123,
  /** `kjx run`: the wall-clock or silence timeout ran out; the VM was killed. */
  timeout: 124,
  /** `kjx run`/`boot`: the VM failed to start or died before the command finished (QEMU's stderr is shown). */
  vmFailed: 125,
  /** `kjx exec`/`ssh`: could not log in, or the host key did not match the pinned one (as ssh does). */
  ssh: 255,
  /** Interrupted by SIGINT / SIGTERM (128 + signal number, as shells do). */
  sigint: 130,
  sigterm: 143,
} as const;

/** The status of a VM run that did not end with the guest command's own exit. */
export function exitForVmOutcome(outcome: 'panic' | 'timeout' | 'silence' | 'vm-failed'): number {
  return outcome === 'panic' ? EXIT.panic : outcome === 'vm-failed' ? EXIT.vmFailed : EXIT.timeout;
}

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'USAGE':
      return EXIT.usage;
    case 'SPEC_SYNTAX':
    case 'SPEC_INVALID':
    case 'SPEC_NOT_FOUND':
    case 'LOCK_INVALID':
    case 'INPUT_NOT_FOUND':
      return EXIT.spec;
    case 'PKG_UNKNOWN':
    case 'PKG_FETCH':
    case 'HOST_TOOL_MISSING':
      return EXIT.packages;
    case 'SUBPROCESS':
      return EXIT.subprocess;
    case 'INTERNAL':
      return EXIT.internal;
    case 'GUEST_PANIC':
      return EXIT.panic;
    case 'VM_TIMEOUT':
      return EXIT.timeout;
    case 'VM_START':
      return EXIT.vmFailed;
    case 'SSH_FAILED':
      return EXIT.ssh;
    case 'KEY_INVALID':
    case 'DISK_TOO_SMALL':
      return EXIT.spec;
    case 'TRACE_PARSE':
      return EXIT.content;
    case 'TRACE_UNAVAILABLE':
      return EXIT.spec;
    case 'TRACE_FAILED':
    case 'BPF_VERIFIER':
      return EXIT.failed;
    case 'BPF_COMPILE':
      return EXIT.spec;
    default:
      return EXIT.content;
  }
}
