/**
 * `tracing.programs:` users' own eBPF programs (docs/tracing.md, "Your own programs"):
 * a BPF C source compiled on the host with libbpf CO-RE, and how it is loaded in the
 * guest — kjx's generic loader (no `loader:`), a C loader (`loader:`, one file or a
 * list, linked with the program's skeleton and libbpf), or a Go program using
 * cilium/ebpf (`go:`, a package directory).
 *
 *     tracing:
 *       programs:
 *         - {name: execs, bpf: ./execs.bpf.c}
 *         - {name: top, bpf: ./top.bpf.c, loader: ./top.c}
 *         - {name: gotop, bpf: ./top.bpf.c, go: ./gotop/}
 *
 * Paths are relative to kjx.yaml; that the files exist is checked when the spec loads.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { expected } from './messages.js';

export type ProgramLoader =
  | { kind: 'generic' }
  | { kind: 'c'; sources: string[]; sourceRefs: string[] }
  | { kind: 'go'; dir: string; dirRef: string };

export interface ProgramSpec {
  name: string;
  /** The BPF C source; absolute after loadSpec (bpfRef as written). */
  bpf: string;
  bpfRef: string;
  loader: ProgramLoader;
}

/** A program name: a file name in the guest and part of C identifiers. */
export const PROGRAM_NAME_RE = /^[a-z][a-z0-9_-]{0,30}$/;

const cFile = (what: string) =>
  z
    .string()
    .min(1)
    .refine((p) => p.endsWith('.c'), { error: (iss) => expected(`${what} (a .c file)`, iss.input) });

export const programObject = z
  .object({
    name: z
      .string()
      .regex(PROGRAM_NAME_RE, {
        error: (iss) =>
          expected(
            'a program name of lowercase letters, digits, "_" and "-" (up to 31), like "execs"',
            iss.input,
          ),
      })
      .describe('The program name: `kjx trace prog NAME`, `kjx-prog NAME` in the guest.'),
    bpf: cFile('the BPF C source').describe(
      'The BPF C source (like execs.bpf.c), compiled with clang -target bpf against the vmlinux.h of the image kernel.',
    ),
    loader: z
      .union([cFile('a C loader source'), z.array(cFile('a C loader source')).min(1)])
      .optional()
      .describe(
        'A user-space loader in C (one file or a list), compiled with the skeleton <stem>.skel.h and linked with libbpf. Without loader or go, kjx-bpf-run loads the program.',
      ),
    go: z
      .string()
      .min(1)
      .optional()
      .describe(
        'A Go main package directory using cilium/ebpf, built offline against Debian packages; the object is placed in it as <stem>.bpf.o for //go:embed.',
      ),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.loader !== undefined && p.go !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['go'],
        message: 'give either "loader" (C) or "go" (a Go package), not both',
      });
  })
  .transform((p): ProgramSpec => {
    const loader: ProgramLoader =
      p.go !== undefined
        ? { kind: 'go', dir: p.go, dirRef: p.go }
        : p.loader !== undefined
          ? {
              kind: 'c',
              sources: typeof p.loader === 'string' ? [p.loader] : p.loader,
              sourceRefs: typeof p.loader === 'string' ? [p.loader] : p.loader,
            }
          : { kind: 'generic' };
    return { name: p.name, bpf: p.bpf, bpfRef: p.bpf, loader };
  })
  .describe('One eBPF program: its BPF source and how it is loaded.');

export const programsList = z
  .array(programObject)
  .superRefine((list, ctx) => {
    const firstAt = new Map<string, number>();
    list.forEach((p, i) => {
      const first = firstAt.get(p.name);
      if (first === undefined) firstAt.set(p.name, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: [i, 'name'],
          input: p.name,
          message: `${JSON.stringify(p.name)} is already the name of programs[${first}]`,
        });
    });
  })
  .describe(
    'Your own eBPF programs, compiled on the host (clang, libbpf CO-RE) and installed with their loaders (docs/tracing.md).',
  );

/** Point a program's host paths at `specDir`. */
export function resolveProgramPaths(p: ProgramSpec, specDir: string): ProgramSpec {
  const abs = (ref: string) => resolve(specDir, ref);
  const loader: ProgramLoader =
    p.loader.kind === 'c'
      ? { ...p.loader, sources: p.loader.sourceRefs.map(abs) }
      : p.loader.kind === 'go'
        ? { ...p.loader, dir: abs(p.loader.dirRef) }
        : p.loader;
  return { ...p, bpf: abs(p.bpfRef), loader };
}

/** Problems with the files a program names (missing, not a file, a Go dir without .go files). */
export function programFileProblems(
  p: ProgramSpec,
): { field: (string | number)[]; input: string; message: string }[] {
  const out: { field: (string | number)[]; input: string; message: string }[] = [];
  const file = (abs: string, ref: string, field: (string | number)[]) => {
    if (!existsSync(abs)) out.push({ field, input: ref, message: `${ref} does not exist` });
    else if (!statSync(abs).isFile()) out.push({ field, input: ref, message: `${ref} is not a file` });
  };
  file(p.bpf, p.bpfRef, ['bpf']);
  if (p.loader.kind === 'c') {
    const many = p.loader.sources.length > 1;
    p.loader.sources.forEach((s, i) => {
      file(s, p.loader.kind === 'c' ? p.loader.sourceRefs[i]! : s, many ? ['loader', i] : ['loader']);
    });
  }
  if (p.loader.kind === 'go') {
    const { dir, dirRef } = p.loader;
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      out.push({ field: ['go'], input: dirRef, message: `${dirRef} is not a directory` });
    else if (!readdirSync(dir).some((n) => n.endsWith('.go')))
      out.push({ field: ['go'], input: dirRef, message: `${dirRef} has no .go files (a Go main package)` });
  }
  return out;
}
