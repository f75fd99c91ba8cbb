/**
 * The one error type of kjx. Library code throws `KjxError`; only the CLI prints it
 * and maps its `code` to an exit status (see docs/ARCHITECTURE.md, "Errors").
 */

/** Stable error codes. Add new ones at the end; never reuse a removed name. */
export type ErrorCode =
  | 'SPEC_SYNTAX' // kjx.yaml is not valid YAML
  | 'SPEC_INVALID' // kjx.yaml does not match the schema
  | 'SPEC_NOT_FOUND'
  | 'LOCK_INVALID'
  | 'PKG_UNKNOWN' // apt knows no such package
  | 'PKG_FETCH' // apt-get download failed or the file did not match its checksum
  | 'DEB_INVALID' // a .deb (ar, tar, compression) could not be read
  | 'DEB_UNSAFE' // an entry would escape the staging tree
  | 'ELF_INVALID'
  | 'LIB_MISSING' // a DT_NEEDED library is not in the staging area
  | 'MODULE_MISSING'
  | 'MODULE_INVALID'
  | 'TREE_CONFLICT'
  | 'TREE_INVALID'
  | 'INPUT_NOT_FOUND' // a host path named in the spec does not exist
  | 'HOST_TOOL_MISSING'
  | 'SUBPROCESS'
  | 'CPIO_INVALID'
  | 'USAGE'
  | 'INTERNAL'
  | 'VM_START' // QEMU failed to start or exited early
  | 'VM_TIMEOUT' // the guest did not finish within the wall-clock or silence timeout
  | 'GUEST_PANIC' // a kernel panic, oops or BUG on the console
  | 'ARTIFACT_UNKNOWN' // `kjx inspect`/`diff`: a file of no format kjx reads
  | 'ARTIFACT_INVALID' // an ISO, disk image, partition table, file system or tar that is truncated or corrupt
  | 'DISK_TOO_SMALL' // the root file system does not fit in `disk.size`
  | 'KEY_INVALID' // an SSH key file (authorized keys, host key, the project key) cannot be used
  | 'SSH_FAILED' // kjx exec / kjx ssh could not log in or the host key did not match
  | 'TRACE_PARSE' // trace output (folded stacks, histograms, ftrace hist) cannot be read
  | 'TRACE_UNAVAILABLE' // kjx trace: the image lacks the component a tracer needs
  | 'TRACE_FAILED' // kjx trace: the tracer failed in the guest (did not attach, exited, no output)
  | 'BPF_COMPILE' // a tracing.programs source (BPF C, C loader, Go loader) does not compile
  | 'BPF_VERIFIER' // the guest kernel's verifier rejected a tracing.programs program
  | 'STRICT_WARNING' // a build warning, made an error by --strict
  | 'GUEST_COPY' // a file could not be copied into or out of a guest
  | 'SNAPSHOT_INVALID' // kjx boot --restore: the file is not a kjx snapshot, or is damaged
  | 'SNAPSHOT_MISMATCH' // kjx boot --restore: the snapshot is of another QEMU, accelerator, image or VM configuration
  | 'KERNEL_BUILD' // a kernel built from source (kernel.source, kernel.tree) did not configure or compile
  | 'KERNEL_INVALID'; // --kernel/--modules: not a built kernel tree or a bzImage, or modules of another release

/** Where in an input file something is. Lines and columns are 1-based. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

export interface KjxErrorOptions {
  /** What to do about it, one sentence. */
  hint?: string;
  /** The wrapped original error. */
  cause?: unknown;
  /** Position in an input file, for spec and lock errors. */
  position?: SourcePosition;
  /** More messages of the same kind (e.g. every spec problem, not just the first). */
  details?: string[];
  /**
   * Which case of `code` this is, for callers that react to one case without
   * matching the message (e.g. MODULE_MISSING "no-modules-dir"). Never printed.
   */
  reason?: string;
}

export class KjxError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly position: SourcePosition | undefined;
  readonly details: string[];
  readonly reason: string | undefined;

  constructor(code: ErrorCode, message: string, options: KjxErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KjxError';
    this.code = code;
    this.hint = options.hint;
    this.position = options.position;
    this.details = options.details ?? [];
    this.reason = options.reason;
  }
}

export function isKjxError(e: unknown): e is KjxError {
  return e instanceof KjxError;
}

/** `file:line:column` for messages. */
export function formatPosition(p: SourcePosition): string {
  return `${p.file}:${p.line}:${p.column}`;
}

/** Recoverable oddities are values passed to a logger the caller gives us (STYLE habit 7). */
export interface Warning {
  code: string;
  message: string;
}

export type WarnFn = (w: Warning) => void;
