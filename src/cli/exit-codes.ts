/**
 * Documented exit statuses of `kjx` (docs/cli.md lists them; it is generated from
 * this file by `npm run docs:cli`, and a test keeps the two equal). `kjx run`/`exec`
 * exit with the guest command's own status; these are for kjx's own failures.
 */
import type { ErrorCode } from '../util/errors.js';

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  spec: 3,
  packages: 4,
  content: 5,
  subprocess: 6,
  strict: 7,
  internal: 70,
  panic: 123,
  timeout: 124,
  vmFailed: 125,
  ssh: 255,
  sigint: 130,
  sigterm: 143,
} as const;

export type ExitName = keyof typeof EXIT;

/** What each status means, in the words docs/cli.md shows. */
export const EXIT_MEANING: Record<ExitName, string> = {
  ok: 'success',
  failed:
    "a check failed: `kjx doctor` found missing tools, a `kjx test` smoke check failed, a `kjx trace` tracer failed in the guest, the guest kernel's verifier rejected a `tracing.programs` program, `kjx diff` found differences, a file could not be copied into or out of a guest",
  usage: 'usage error (unknown option, missing argument, a value out of range)',
  spec: '`kjx.yaml`, `kjx.lock` or a host file they name is wrong (a `tracing.programs` source that does not compile, too), or the kernel `--kernel` names is not built (or `--modules` are of another kernel)',
  packages: 'Debian packages could not be resolved or fetched, or a host tool is missing',
  content: 'content problem: a `.deb`, ELF file, library, kernel module, archive, image or VM snapshot',
  subprocess: 'a host subprocess failed',
  strict: '`--strict`: the build warned (the warning is printed as the error)',
  internal: 'internal error (a bug: please report it with `--debug` output)',
  panic:
    '`kjx run`/`test`/`trace`: the guest kernel panicked, oopsed or hit a BUG (the console excerpt is printed)',
  timeout:
    '`kjx run`/`test`/`trace`/`boot --detach`: `--timeout` (wall clock) or `--silence` (no output) ran out; the VM was killed',
  vmFailed:
    "`kjx run`/`boot`: QEMU failed to start or the guest died before the command finished (QEMU's stderr is printed)",
  ssh: '`kjx exec`/`ssh`: login failed or the host key did not match the pinned one (as ssh does)',
  sigint: 'interrupted by SIGINT (128 + 2, as shells do)',
  sigterm: 'interrupted by SIGTERM (128 + 15)',
};

/**
 * The exit status of each error code. A Record over every ErrorCode: a code added
 * without a status here fails to typecheck.
 */
export const EXIT_FOR_CODE: Record<ErrorCode, ExitName> = {
  SPEC_SYNTAX: 'spec',
  SPEC_INVALID: 'spec',
  SPEC_NOT_FOUND: 'spec',
  LOCK_INVALID: 'spec',
  PKG_UNKNOWN: 'packages',
  PKG_FETCH: 'packages',
  DEB_INVALID: 'content',
  DEB_UNSAFE: 'content',
  ELF_INVALID: 'content',
  LIB_MISSING: 'content',
  MODULE_MISSING: 'content',
  MODULE_INVALID: 'content',
  TREE_CONFLICT: 'content',
  TREE_INVALID: 'content',
  INPUT_NOT_FOUND: 'spec',
  HOST_TOOL_MISSING: 'packages',
  SUBPROCESS: 'subprocess',
  CPIO_INVALID: 'content',
  USAGE: 'usage',
  INTERNAL: 'internal',
  VM_START: 'vmFailed',
  VM_TIMEOUT: 'timeout',
  GUEST_PANIC: 'panic',
  ARTIFACT_UNKNOWN: 'content',
  ARTIFACT_INVALID: 'content',
  DISK_TOO_SMALL: 'spec',
  KEY_INVALID: 'spec',
  SSH_FAILED: 'ssh',
  TRACE_PARSE: 'content',
  TRACE_UNAVAILABLE: 'spec',
  TRACE_FAILED: 'failed',
  STRICT_WARNING: 'strict',
  // a program that does not compile is a wrong input, like a spec error
  BPF_COMPILE: 'spec',
  // the guest kernel rejected it: a check failed, as a tracer that failed
  BPF_VERIFIER: 'failed',
  GUEST_COPY: 'failed',
  SNAPSHOT_INVALID: 'content',
  SNAPSHOT_MISMATCH: 'content',
  // a kernel that does not compile is a wrong input (the tree, a fragment), like a BPF program
  KERNEL_BUILD: 'spec',
  // a developer's kernel that is not built, or modules of another build: a wrong input, as in kjx.yaml
  KERNEL_INVALID: 'spec',
};

/** The status of a VM run that did not end with the guest command's own exit. */
export function exitForVmOutcome(outcome: 'panic' | 'timeout' | 'silence' | 'vm-failed'): number {
  return outcome === 'panic' ? EXIT.panic : outcome === 'vm-failed' ? EXIT.vmFailed : EXIT.timeout;
}

export function exitCodeFor(code: ErrorCode): number {
  return EXIT[EXIT_FOR_CODE[code]];
}
