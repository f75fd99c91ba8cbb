/**
 * What an image offers to tracers: from its spec (an ephemeral VM boots what the
 * spec builds), or probed over SSH in a detached VM (which may run an older build),
 * and what a trace of it needs.
 */
import { Writable } from 'node:stream';
import type { Spec } from '../spec/schema.js';
import { LIBBPF_TOOLS } from '../spec/tracing.js';
import type { Guest } from '../vm/guest.js';
import { FTRACE_HELPER_LINK } from './ftrace-helper.js';
import type { ImageTools } from './tracers.js';

export function collectTools(spec: Spec): ImageTools {
  return {
    components: [...spec.components],
    libbpfTools: spec.components.includes('libbpf-tools') ? [...spec.tracing.libbpfTools] : [],
  };
}

/** From the file names in /usr/sbin and /usr/bin of a guest. */
export function toolsFromListing(paths: string[]): ImageTools {
  const names = new Set(paths.map((p) => p.trim()).filter(Boolean));
  const libbpfTools = LIBBPF_TOOLS.filter((t) => names.has(`/usr/sbin/${t}`));
  const components: string[] = [];
  if (names.has(FTRACE_HELPER_LINK)) components.push('ftrace');
  if (libbpfTools.length) components.push('libbpf-tools');
  if (names.has('/usr/bin/bpftrace')) components.push('bpftrace');
  if (names.has('/usr/sbin/bpftool')) components.push('bpftool');
  return { components, libbpfTools: [...libbpfTools] };
}

/** List a running guest's /usr/sbin and /usr/bin (a detached VM, over SSH). */
export async function probeVmTools(guest: Guest): Promise<ImageTools> {
  const chunks: Buffer[] = [];
  await guest.run(
    { argv: ['/bin/sh', '-c', 'for f in /usr/sbin/* /usr/bin/*; do echo "$f"; done'] },
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

/**
 * Guest memory a trace of an ephemeral VM wants at least: bpftrace's LLVM, unpacked
 * from an initramfs, needs about 2 GiB (src/components/bpftrace.ts).
 */
export function traceMemoryMiB(tools: ImageTools): number {
  return tools.components.includes('bpftrace') ? 2048 : 0;
}
