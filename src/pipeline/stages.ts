/** The stages of `kjx build`, in order, with the titles progress displays show. */
export type StageName = 'spec' | 'resolve' | 'fetch' | 'base' | 'kernel' | 'programs' | 'files' | 'write';

export const STAGES: { name: StageName; title: string }[] = [
  { name: 'spec', title: 'Read kjx.yaml' },
  { name: 'resolve', title: 'Resolve Debian packages' },
  { name: 'fetch', title: 'Fetch .deb files' },
  { name: 'base', title: 'Assemble components and library closure' },
  { name: 'kernel', title: 'Kernel and module closure' },
  { name: 'programs', title: 'Compile eBPF programs (tracing.programs)' },
  { name: 'files', title: 'Files from the spec' },
  { name: 'write', title: 'Write artifacts' },
];
