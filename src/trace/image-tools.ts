/**
 * What an image offers to tracers: from its spec (an ephemeral VM boots what the
 * spec builds), or probed over SSH in a detached VM (which may run an older build),
 * and what a trace of it needs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { BPF_DIR } from '../bpf/guest-paths.js';
import { builtinComponent, COMPONENT_NAMES } from '../components/index.js';
import { LIBBPF_TOOLS_DIR } from '../components/libbpf-tools.js';
import { planComponents } from '../plan/components.js';
import { LIBBPF_TOOLS } from '../spec/libbpf-tools.js';
import type { Spec } from '../spec/schema.js';
import type { Guest } from '../vm/guest.js';
import type { ImageTools } from './tracers.js';

/** The tracers' word for the component whose programs `ImageTools.libbpfTools` lists. */
const LIBBPF = 'libbpf-tools';

/** From the spec: the components the image has (with what they bring along), the libbpf-tools it installs. */
export function collectTools(spec: Spec): ImageTools {
  const { components } = planComponents(spec).spec;
  return {
    components: [...components],
    libbpfTools: components.includes(LIBBPF) ? [...spec.tracing.libbpfTools] : [],
    programs: spec.tracing.programs.map((p) => ({ name: p.name, loader: p.loader.kind })),
  };
}

/**
 * From the file names in /usr/sbin, /usr/bin and /usr/lib/kjx/bpf/* of a guest: a
 * component is there when a file it ships is; a program when its object is.
 */
export function toolsFromListing(paths: string[]): ImageTools {
  const names = new Set(paths.map((p) => p.trim()).filter(Boolean));
  const libbpfTools = LIBBPF_TOOLS.filter((t) => names.has(`${LIBBPF_TOOLS_DIR}/${t}`));
  const components = COMPONENT_NAMES.filter((n) => builtinComponent(n)?.probe?.some((p) => names.has(p)));
  // tracing.programs: /usr/lib/kjx/bpf/NAME/ holds the object, and NAME when it has a loader
  const programs: NonNullable<ImageTools['programs']> = [];
  for (const p of [...names].sort()) {
    const m = new RegExp(`^${BPF_DIR}/([^/]+)/[^/]+\\.bpf\\.o$`).exec(p);
    if (!m || programs.some((x) => x.name === m[1])) continue;
    // a Go loader cannot be told from a C one by name; both are "its own loader"
    programs.push({ name: m[1]!, loader: names.has(`${BPF_DIR}/${m[1]}/${m[1]}`) ? 'c' : 'generic' });
  }
  return { components, libbpfTools: [...libbpfTools], ...(programs.length ? { programs } : {}) };
}

/** List a running guest's /usr/sbin, /usr/bin and programs (a detached VM, over SSH). */
export async function probeVmTools(guest: Guest): Promise<ImageTools> {
  const chunks: Buffer[] = [];
  await guest.run(
    { argv: ['/bin/sh', '-c', `for f in /usr/sbin/* /usr/bin/* ${BPF_DIR}/*/*; do echo "$f"; done`] },
    {
      stdout: new Writable({
        write(b: Buffer, _e, cb) {
          chunks.push(b);
          cb();
        },
      }),
      stderr: new Writable({ write: (_b, _e, cb) => cb() }),
    },
  );
  return { ...toolsFromListing(Buffer.concat(chunks).toString('utf8').split('\n')), vm: guest.name };
}

/** The BPF source of a `tracing.programs` entry, read so a verifier error is shown at its line. */
export function programSources(
  spec: Spec | undefined,
  name: string | undefined,
): { file: string; text: string }[] {
  const p = spec?.tracing.programs.find((x) => x.name === name);
  return p && existsSync(p.bpf) ? [{ file: p.bpfRef, text: readFileSync(p.bpf, 'utf8') }] : [];
}
