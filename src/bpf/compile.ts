/**
 * The host build of `tracing.programs`, cached by content:
 *
 * 1. `vmlinux.h` from the BTF of the image's own kernel (`bpftool btf dump file
 *    BTF format c`), once per kernel BTF;
 * 2. the BPF object: `clang -g -O2 -target bpf -D__TARGET_ARCH_x86`, then
 *    `llvm-strip -g` (DWARF out, BTF and CO-RE relocations kept);
 * 3. the loader: kjx-bpf-run (src/bpf/loader/kjx-bpf-run.c) for every image; a C
 *    loader with the skeleton (`bpftool gen skeleton` -> `<stem>.skel.h`) linked
 *    against Debian's libbpf, libelf and zlib statically (only libc stays dynamic, as
 *    everything in the image uses it); a Go loader built offline in GOPATH mode
 *    against Debian's cilium/ebpf (`CGO_ENABLED=0`: a static binary), with the object
 *    beside its sources as `<stem>.bpf.o` for `//go:embed`.
 *
 * Every result is stored as content-addressed blobs under a key made of everything
 * the step reads: the sources (and the headers they include with `#include "..."`),
 * the command lines, the toolchain's identity and the kernel BTF. A compile error is
 * BPF_COMPILE with the compiler's own `file:line:column` lines.
 */
import {
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { type Cache, cacheTempDir, getBlob, getRecord, putBlob, putRecord } from '../sources/cache.js';
import type { ProgramSpec } from '../spec/programs.js';
import { bpfStem, portableProgram } from '../spec/values.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import { hashValue, sha256 } from '../util/hash.js';
import { parseDiagnostics } from './diagnostics.js';
import { DEBIAN_GOPATH, type Toolchain } from './toolchain.js';

/** The generic loader's C source (a file of the repository, beside this module's sources). */
export const GENERIC_LOADER_SOURCE = new URL('../../src/bpf/loader/kjx-bpf-run.c', import.meta.url);

export interface CompiledProgram {
  name: string;
  stem: string;
  kind: ProgramSpec['loader']['kind'];
  /** The BPF object (BTF and CO-RE relocations, no DWARF). */
  object: Buffer;
  /** The C or Go loader binary. */
  loader?: Buffer;
  cached: boolean;
}

export interface CompileOptions {
  programs: ProgramSpec[];
  /** Where kjx.yaml is: compilers run there, so their messages name files as the spec does. */
  specDir: string;
  toolchain: Toolchain;
  /** The raw BTF of the image's kernel (read only when vmlinux.h is not cached) and its sha256. */
  btf: { sha: string; data: () => Promise<Buffer> };
  cache: Cache;
  progress?: (text: string) => void;
  warn?: WarnFn;
}

export interface Compiled {
  genericLoader: Buffer;
  programs: CompiledProgram[];
}

/** A source file that is part of a program's key. */
interface SourceFile {
  path: string;
  sha: string;
}

/** Bounds on what a program's sources may pull into its key. */
const MAX_SOURCE_FILES = 2000;
const INCLUDE = /^[ \t]*#[ \t]*include[ \t]*"([^"]+)"/gm;

/**
 * The files a C source reads that are not the toolchain's: itself and, transitively,
 * what it includes with quotes, found next to the including file or in `dirs`.
 * Generated headers (vmlinux.h, the skeleton) are not there, so they are skipped.
 */
export function quotedIncludes(entry: string, dirs: string[]): string[] {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0 && seen.size < MAX_SOURCE_FILES) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const m of text.matchAll(INCLUDE)) {
      const inc = m[1]!;
      const found = [dirname(file), ...dirs].map((d) => resolve(d, inc)).find((p) => isFile(p));
      if (found && !seen.has(found)) todo.push(found);
    }
  }
  return [...seen];
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Every file under a Go package directory (it is copied whole for the build). */
function goFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (out.length >= MAX_SOURCE_FILES)
        throw new KjxError(
          'BPF_COMPILE',
          `${dir}: more than ${MAX_SOURCE_FILES} files in a Go loader directory`,
          {
            hint: 'point go: at the directory of the loader package only',
          },
        );
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The files a program's build reads, with their content hashes (part of its key). */
export function programSources(p: ProgramSpec): SourceFile[] {
  const bpfDir = dirname(p.bpf);
  const files = new Set(quotedIncludes(p.bpf, [bpfDir]));
  if (p.loader.kind === 'c')
    for (const s of p.loader.sources) for (const f of quotedIncludes(s, [bpfDir])) files.add(f);
  if (p.loader.kind === 'go') for (const f of goFiles(p.loader.dir)) files.add(f);
  return [...files].sort().map((path) => ({ path, sha: sha256(readFileSync(path)) }));
}

/**
 * What the programs' build reads besides the kernel and the toolchain, for the
 * build's up-front key: their sources (and included headers) and kjx-bpf-run's.
 */
export function programsInputKey(programs: ProgramSpec[], specDir: string): string {
  return hashValue({
    loader: sha256(readFileSync(GENERIC_LOADER_SOURCE)),
    programs: programs.map((p) => ({
      name: p.name,
      kind: p.loader.kind,
      sources: programSources(p).map((s) => [relative(specDir, s.path), s.sha]),
    })),
  });
}

// ---------------------------------------------------------------------------------------
// command lines (their templates are part of the keys: W is the work directory)

const BPF_CFLAGS = ['-g', '-O2', '-target', 'bpf', '-D__TARGET_ARCH_x86'];
/** Only libc stays dynamic: every binary of the image already needs it. */
const LOADER_LIBS = ['-Wl,-Bstatic', '-lbpf', '-lelf', '-lz', '-Wl,-Bdynamic'];
const LOADER_CFLAGS = ['-O2', '-Wall', '-s'];
const GO_FLAGS = ['build', '-trimpath', '-ldflags=-s -w -buildid=', '-o'];
const COMMANDS = { BPF_CFLAGS, LOADER_LIBS, LOADER_CFLAGS, GO_FLAGS, strip: ['-g'] };

async function runTool(
  step: string,
  file: string,
  args: string[],
  opts: {
    cwd: string;
    env?: Record<string, string>;
    kind?: 'c' | 'go';
    diagnostics?: (f: string) => string;
    /** The work directory: files kjx generated there (vmlinux.h, the skeleton) are named without it. */
    work?: string;
  },
): Promise<{ stdout: Buffer; stderr: string }> {
  const { execa } = await import('execa');
  const r = await execa(file, args, {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    encoding: 'buffer',
    reject: false,
    maxBuffer: 256 << 20,
  });
  const stdout = Buffer.from(r.stdout as Uint8Array);
  let stderr = Buffer.from(r.stderr as Uint8Array).toString('utf8');
  if (r.exitCode === 0 && !r.signal) return { stdout, stderr };
  if (opts.work) stderr = stderr.replaceAll(`${opts.work}/include/`, '').replaceAll(`${opts.work}/`, '');
  if (opts.kind) {
    const d = parseDiagnostics(`${stderr}\n${stdout.toString('utf8')}`, opts.kind, opts.diagnostics);
    if (d.errors > 0)
      throw new KjxError(
        'BPF_COMPILE',
        `${step}: ${d.errors} error${d.errors === 1 ? '' : 's'}\n${d.lines.join('\n')}`,
        {
          ...(d.position ? { position: d.position } : {}),
          hint: 'fix the source at the first error above; kjx build compiles it again (vmlinux.h and <stem>.skel.h are generated by kjx)',
        },
      );
  }
  const why = r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`;
  const said = stderr.trim() ? `:\n${stderr.trim().split('\n').slice(-20).join('\n')}` : '';
  // a compiler's (or linker's) own words suffice; the command line is kjx's business
  if (opts.kind)
    throw new KjxError('BPF_COMPILE', `${step}: failed (${why})${said}`, {
      hint: 'fix the source; kjx build compiles it again',
    });
  throw new KjxError('SUBPROCESS', `${step}: \`${[file, ...args].join(' ')}\` failed (${why})${said}`, {
    hint: 'see the output above',
  });
}

// ---------------------------------------------------------------------------------------
// steps

/** vmlinux.h for a kernel BTF (cached per BTF and bpftool). */
async function vmlinuxHeader(o: CompileOptions, work: string): Promise<Buffer> {
  const key = `bpf-vmlinux-h-${hashValue({ btf: o.btf.sha, tool: o.toolchain.id })}`;
  const rec = getRecord<{ header: string }>(o.cache, key);
  const hit = rec && getBlob(o.cache, rec.header);
  if (hit) return hit;
  const btfFile = join(work, 'vmlinux.btf');
  writeFileSync(btfFile, await o.btf.data());
  o.progress?.("vmlinux.h from the kernel's BTF");
  const { stdout } = await runTool(
    'vmlinux.h (bpftool btf dump)',
    o.toolchain.bpftool,
    ['btf', 'dump', 'file', btfFile, 'format', 'c'],
    {
      cwd: work,
    },
  );
  putRecord(o.cache, key, { header: putBlob(o.cache, stdout) });
  return stdout;
}

async function compileGenericLoader(o: CompileOptions, work: string): Promise<Buffer> {
  const source = readFileSync(GENERIC_LOADER_SOURCE);
  const key = `bpf-loader-${hashValue({ source: sha256(source), tool: o.toolchain.id, COMMANDS })}`;
  const rec = getRecord<{ binary: string }>(o.cache, key);
  const hit = rec && getBlob(o.cache, rec.binary);
  if (hit) return hit;
  o.progress?.('kjx-bpf-run (the generic loader)');
  const src = join(work, 'kjx-bpf-run.c');
  writeFileSync(src, source);
  const out = join(work, 'kjx-bpf-run');
  await runTool(
    'kjx-bpf-run (the generic loader)',
    o.toolchain.cc,
    [...LOADER_CFLAGS, `-ffile-prefix-map=${work}=.`, '-o', out, src, ...LOADER_LIBS],
    { cwd: work, kind: 'c' },
  );
  const bin = readFileSync(out);
  putRecord(o.cache, key, { binary: putBlob(o.cache, bin) });
  return bin;
}

async function compileProgram(
  o: CompileOptions,
  p: ProgramSpec,
  header: () => Promise<Buffer>,
  work: string,
): Promise<CompiledProgram> {
  const stem = bpfStem(p.bpf);
  const sources = programSources(p).map((s) => [relative(o.specDir, s.path), s.sha]);
  const key = `bpf-prog-${hashValue({
    ...(portableProgram(p) as object),
    stem,
    sources,
    btf: o.btf.sha,
    tool: o.toolchain.id,
    COMMANDS,
  })}`;
  const rec = getRecord<{ object: string; loader?: string }>(o.cache, key);
  if (rec) {
    const object = getBlob(o.cache, rec.object);
    const loader = rec.loader ? getBlob(o.cache, rec.loader) : undefined;
    if (object && (!rec.loader || loader))
      return { name: p.name, stem, kind: p.loader.kind, object, ...(loader ? { loader } : {}), cached: true };
  }
  const dir = join(work, p.name);
  mkdirSync(join(dir, 'include'), { recursive: true });
  writeFileSync(join(dir, 'include', 'vmlinux.h'), await header());
  // compilers run in the spec's directory, so their messages name files as kjx.yaml does
  const cwd = o.specDir;
  const rel = (abs: string) => {
    const r = relative(cwd, abs);
    return r.startsWith('..') ? abs : r;
  };
  o.progress?.(`${p.name}: clang -target bpf ${rel(p.bpf)}`);
  const raw = join(dir, `${stem}.raw.o`);
  await runTool(
    `tracing.programs ${p.name}: ${rel(p.bpf)}`,
    o.toolchain.clang,
    [
      ...BPF_CFLAGS,
      `-I${join(dir, 'include')}`,
      `-I${dirname(p.bpf)}`,
      `-fdebug-prefix-map=${dir}=.`,
      `-fdebug-prefix-map=${cwd}=.`,
      '-c',
      rel(p.bpf),
      '-o',
      raw,
    ],
    { cwd, kind: 'c', work: dir },
  );
  const objPath = join(dir, `${stem}.bpf.o`);
  await runTool(`tracing.programs ${p.name}: llvm-strip`, o.toolchain.llvmStrip, ['-g', raw, '-o', objPath], {
    cwd: dir,
  });
  const object = readFileSync(objPath);
  let loader: Buffer | undefined;
  if (p.loader.kind === 'c') {
    const { stdout: skel } = await runTool(
      `tracing.programs ${p.name}: bpftool gen skeleton`,
      o.toolchain.bpftool,
      ['gen', 'skeleton', `${stem}.bpf.o`],
      { cwd: dir },
    );
    writeFileSync(join(dir, `${stem}.skel.h`), skel);
    const out = join(dir, p.name);
    o.progress?.(`${p.name}: cc ${p.loader.sourceRefs.join(' ')}`);
    await runTool(
      `tracing.programs ${p.name}: the C loader`,
      o.toolchain.cc,
      [
        ...LOADER_CFLAGS,
        `-I${dir}`,
        `-I${dirname(p.bpf)}`,
        `-ffile-prefix-map=${dir}=.`,
        `-ffile-prefix-map=${cwd}=.`,
        '-o',
        out,
        ...p.loader.sources.map(rel),
        ...LOADER_LIBS,
      ],
      { cwd, kind: 'c', work: dir },
    );
    loader = readFileSync(out);
  } else if (p.loader.kind === 'go') {
    // GOPATH mode, offline: the package is copied under a GOPATH of its own, Debian's
    // /usr/share/gocode after it for cilium/ebpf and golang.org/x/sys
    // by its resolved path: go names the files of the directory it builds in relative to
    // it only when that matches its working directory, which a symlinked cache would not
    const gopath = join(realpathSync(dir), 'gopath');
    const pkg = join(gopath, 'src', 'kjx.local', p.name);
    const src = p.loader.dir;
    cpSync(src, pkg, { recursive: true, filter: (s) => s === src || !basename(s).startsWith('.') });
    writeFileSync(join(pkg, `${stem}.bpf.o`), object);
    const out = join(dir, p.name);
    o.progress?.(`${p.name}: go build ${p.loader.dirRef}`);
    const goDir = p.loader.dirRef;
    await runTool(`tracing.programs ${p.name}: the Go loader`, o.toolchain.go!, [...GO_FLAGS, out, '.'], {
      cwd: pkg,
      env: {
        GO111MODULE: 'off',
        GOPATH: `${gopath}:${DEBIAN_GOPATH}`,
        GOCACHE: join(o.cache.root, 'go-build'),
        GOFLAGS: '',
        GOPROXY: 'off',
        CGO_ENABLED: '0',
        HOME: dir,
      },
      kind: 'go',
      // go names files relative to the package directory it built in
      diagnostics: (f) => join(goDir, f.replace(/^\.\//, '')),
    });
    loader = readFileSync(out);
  }
  putRecord(o.cache, key, {
    object: putBlob(o.cache, object),
    ...(loader ? { loader: putBlob(o.cache, loader) } : {}),
  });
  return { name: p.name, stem, kind: p.loader.kind, object, ...(loader ? { loader } : {}), cached: false };
}

/** Compile every program (and kjx-bpf-run), each from the cache when its inputs are unchanged. */
export async function compilePrograms(o: CompileOptions): Promise<Compiled> {
  // named with our pid: a build killed mid-compile leaves it for the next build to sweep
  const work = cacheTempDir(o.cache, 'bpf');
  try {
    let header: Promise<Buffer> | undefined;
    const lazyHeader = () => {
      header ??= vmlinuxHeader(o, work);
      return header;
    };
    const genericLoader = await compileGenericLoader(o, work);
    const programs: CompiledProgram[] = [];
    for (const p of o.programs) programs.push(await compileProgram(o, p, lazyHeader, work));
    return { genericLoader, programs };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
