/**
 * The `tracing:` section of kjx.yaml: which libbpf-tools the `libbpf-tools`
 * component puts into the image, and the user's own programs (programs.ts). The names are those of Debian 12's
 * `libbpf-tools` 0.26 (`/usr/sbin/*` of the package); the component takes each
 * one from the package, so a name the package lost fails the build loudly.
 */
import { z } from 'zod';
import { DEFAULT_LIBBPF_TOOLS, LIBBPF_TOOLS, type LibbpfTool } from './libbpf-tools.js';
import { didYouMean, expected } from './messages.js';
import { type ProgramSpec, programsList } from './programs.js';

export interface TracingSpec {
  /** Tools the libbpf-tools component installs into /usr/sbin. */
  libbpfTools: LibbpfTool[];
  /** The user's own eBPF programs (src/spec/programs.ts). */
  programs: ProgramSpec[];
}

const toolName = z
  .string()
  .superRefine((name, ctx) => {
    if (!(LIBBPF_TOOLS as readonly string[]).includes(name))
      ctx.addIssue({
        code: 'custom',
        input: name,
        message: `${expected('a tool of Debian\'s libbpf-tools 0.26 (like "runqlat")', name)}${didYouMean(name, LIBBPF_TOOLS)}`,
      });
  })
  .transform((name) => name as LibbpfTool)
  .describe(`A libbpf-tools program: ${LIBBPF_TOOLS.join(', ')}.`);

export const tracingObject = z
  .object({
    libbpfTools: z
      .array(toolName)
      .min(1)
      .superRefine((list, ctx) => {
        const firstAt = new Map<string, number>();
        list.forEach((name, i) => {
          const first = firstAt.get(name);
          if (first === undefined) firstAt.set(name, i);
          else
            ctx.addIssue({
              code: 'custom',
              path: [i],
              input: name,
              message: `${JSON.stringify(name)} is listed twice (first as libbpfTools[${first}])`,
            });
        });
      })
      .default(() => [...DEFAULT_LIBBPF_TOOLS])
      .describe(
        `Which libbpf-tools the libbpf-tools component installs (each ~350 KB). Default: ${DEFAULT_LIBBPF_TOOLS.join(', ')}.`,
      ),
    programs: programsList.prefault(() => []),
  })
  .strict()
  .transform((t): TracingSpec => ({ libbpfTools: t.libbpfTools, programs: t.programs }))
  .describe('Tracing: which libbpf-tools to install, and your own eBPF programs (docs/tracing.md).');
