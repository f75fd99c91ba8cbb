/**
 * What an image offers to tracers: from its spec (an ephemeral VM boots what the
 * spec builds), or probed over SSH in a detached VM (which may run an older build).
 */
import { Writable } from 'node:stream';
import { BPF_DIR } from '../bpf/guest-paths.js';
import type { Spec } from '../spec/schema.js';
import { LIBBPF_TOOLS } from '../spec/tracing.js';
import type { VmRecord } from '../vm/registry.js';
import { FTRACE_HELPER_LINK } from './ftrace-helper.js';
import type { ImageTools } from './tracers.js';

export function collectTools(spec: Spec): ImageTools {
  return {
    components: [...spec.components],
    libbpfTools: spec.components.includes('libbpf-tools') ? [...spec.tracing.libbpfTools] : [],
    programs: spec.tracing.programs.map((p) => ({ name: p.name, loader: p.loader.kind })),
  };
}

/** From the file names in /usr/sbin, /usr/bin and /usr/lib/kjx/bpf/* of a guest. */
export function toolsFromListing(paths: string[]): ImageTools {
  const names = new Set(paths.map((p) => p.trim()).filter(Boolean));
  const libbpfTools = LIBBPF_TOOLS.filter((t) => names.has(`/usr/sbin/${t}`));
  const components: string[] = [];
  if (names.has(FTRACE_HELPER_LINK)) components.push('ftrace');
  if (libbpfTools.length) components.push('libbpf-tools');
  if (names.has('/usr/bin/bpftrace')) components.push('bpftrace');
  if (names.has('/usr/sbin/bpftool')) components.push('bpftool');
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

/** List the guest's /usr/sbin, /usr/bin and programs over SSH. */
export async function probeVmTools(rec: VmRecord): Promise<ImageTools> {
  const { sshExec } = await import('../vm/ssh-client.js');
  const chunks: Buffer[] = [];
  const sink = () =>
    new Writable({
      write(b: Buffer, _e, cb) {
        chunks.push(b);
        cb();
      },
    });
  await sshExec(
    rec,
    ['/bin/sh', '-c', `for f in /usr/sbin/* /usr/bin/* ${BPF_DIR}/*/*; do echo "$f"; done`],
    {
      stdout: sink(),
      stderr: new Writable({ write: (_b, _e, cb) => cb() }),
    },
  );
  return { ...toolsFromListing(Buffer.concat(chunks).toString('utf8').split('\n')), vm: rec.name };
}
