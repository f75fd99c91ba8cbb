/**
 * What a build of `tracing.programs` needs to know before any heavy work, as part
 * of the Plan (src/plan/plan.ts): the programs, the host toolchain that compiles
 * them (found now, so a missing compiler is reported before anything is
 * downloaded) and what their sources are, by content (the programs stage's key).
 */
import type { ProgramSpec } from '../spec/programs.js';
import type { Spec } from '../spec/schema.js';
import { programsInputKey } from './compile.js';
import { requireToolchain, type Toolchain } from './toolchain.js';

export interface ProgramsPlan {
  programs: ProgramSpec[];
  /** Where kjx.yaml is: the compilers run there, so their messages name files as the spec does. */
  specDir: string;
  toolchain: Toolchain;
  /** The programs' sources and headers and kjx-bpf-run's, by content (paths relative to specDir). */
  inputKey: string;
}

/**
 * The programs of a spec, or undefined when it has none.
 * @throws KjxError HOST_TOOL_MISSING with the apt-get line that installs what is missing
 */
export function planPrograms(spec: Spec): ProgramsPlan | undefined {
  const programs = spec.tracing.programs;
  if (programs.length === 0) return undefined;
  const toolchain = requireToolchain(programs);
  return { programs, specDir: spec.specDir, toolchain, inputKey: programsInputKey(programs, spec.specDir) };
}
