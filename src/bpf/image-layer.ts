/**
 * What `tracing.programs` put into the image (docs/tracing.md, "Your own programs"):
 *
 *     /usr/lib/kjx/bpf/kjx-bpf-run         the generic loader (also --dump-maps PID)
 *     /usr/lib/kjx/bpf/NAME/STEM.bpf.o     each program's object
 *     /usr/lib/kjx/bpf/NAME/NAME           its C or Go loader
 *     /usr/sbin/kjx-prog                   `kjx-prog NAME`: runs NAME with its loader
 *     /usr/sbin/kjx-bpf-run, kjx-bpf-ready
 *
 * The loaders need only libc (libbpf, libelf and zlib are linked in; Go ones are
 * static), which the image's own programs already brought: the library closure runs
 * against the assembled base tree, and a loader that wants more is a clear error.
 */
import { bpfReadyTree } from '../components/libbpf-tools.js';
import { BPF_READY_LINK } from '../guest/bpf-ready.js';
import { plainWords, readShFile, renderSh } from '../guest/sh-file.js';
import { addLibraryClosure } from '../rootfs/lib-closure.js';
import { addEntry, ensureParents, mk, newTree, type Tree } from '../rootfs/tree.js';
import type { ProgramSpec } from '../spec/programs.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import type { Compiled } from './compile.js';
import { BPF_DIR, GENERIC_LOADER, GENERIC_LOADER_LINK, PROG_RUNNER, programPaths } from './guest-paths.js';

/**
 * /usr/sbin/kjx-prog (sh/kjx-prog.sh): `kjx-prog NAME` execs NAME's loader, so its
 * pid is the loader's and a stop signal reaches it. The generic loader reports
 * readiness itself (`ready: signal`, `ready: {file}`); C and Go loaders go through
 * kjx-bpf-ready when a service waits for them.
 */
export function progRunnerScript(names: readonly string[]): string {
  return renderSh(readShFile(new URL('./sh/kjx-prog.sh', import.meta.url)), {
    KJX_BPF_DIR: BPF_DIR,
    KJX_GENERIC_LOADER: GENERIC_LOADER,
    KJX_BPF_READY: BPF_READY_LINK,
    KJX_PROGRAMS: plainWords(names, 'tracing.programs'),
  });
}

/** The programs' files as a tree, with the libraries their loaders need taken from `base`. */
export function programsLayer(compiled: Compiled, programs: ProgramSpec[], base: Tree, warn: WarnFn): Tree {
  const t = newTree();
  const gen = { kind: 'generated', by: 'tracing.programs' } as const;
  addEntry(t, mk.file(GENERIC_LOADER, compiled.genericLoader, gen, 0o755));
  addEntry(t, mk.symlink(GENERIC_LOADER_LINK, GENERIC_LOADER, gen));
  addEntry(t, mk.file(PROG_RUNNER, progRunnerScript(compiled.programs.map((p) => p.name)), gen, 0o755));
  for (const c of compiled.programs) {
    const spec = programs.find((p) => p.name === c.name)!;
    const paths = programPaths(c.name, c.stem);
    addEntry(t, mk.file(paths.object, c.object, { kind: 'input', ref: spec.bpfRef }, 0o644));
    if (c.loader) {
      const ref =
        spec.loader.kind === 'c'
          ? spec.loader.sourceRefs.join(' ')
          : spec.loader.kind === 'go'
            ? spec.loader.dirRef
            : '';
      addEntry(t, mk.file(paths.loader, c.loader, { kind: 'input', ref }, 0o755));
    }
  }
  // kjx-bpf-ready, for services of C and Go loaders (the tracing components add the same file)
  for (const e of bpfReadyTree().values()) if (!t.has(e.path)) addEntry(t, e);
  ensureParents(t, gen);
  try {
    addLibraryClosure(t, base, { warn });
  } catch (e) {
    if (!(e instanceof KjxError) || e.code !== 'LIB_MISSING') throw e;
    throw new KjxError(
      'LIB_MISSING',
      `tracing.programs: a loader needs a library the image does not have: ${e.message}`,
      {
        hint: 'loaders link libbpf, libelf and zlib in and need only libc (which busybox, runit and dropbear bring); add the package with the library to packages:, or leave busybox-static out',
        cause: e,
      },
    );
  }
  return t;
}
