/**
 * Where `tracing.programs` live in the guest (image-layer.ts puts them there; the
 * trace driver and `kjx trace prog` use them). No imports: the tracer planning reads
 * these without loading the build.
 */
export const BPF_DIR = '/usr/lib/kjx/bpf';
/** The generic loader; `kjx-bpf-run --dump-maps PID` reads any loader's maps. */
export const GENERIC_LOADER = `${BPF_DIR}/kjx-bpf-run`;
export const GENERIC_LOADER_LINK = '/usr/sbin/kjx-bpf-run';
/** `kjx-prog NAME`: runs a program with its loader. */
export const PROG_RUNNER = '/usr/sbin/kjx-prog';
/** The generic loader's line once every program is attached (src/bpf/loader/kjx-bpf-run.c). */
export const READY_LINE = '{"type":"ready"}';

/** Where a program's files are in the guest. */
export function programPaths(name: string, stem: string): { object: string; loader: string } {
  return { object: `${BPF_DIR}/${name}/${stem}.bpf.o`, loader: `${BPF_DIR}/${name}/${name}` };
}
