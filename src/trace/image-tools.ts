/**
 * What an image offers to tracers: from its spec (an ephemeral VM boots what the
 * spec builds), or probed over SSH in a detached VM (which may run an older build).
 */
import { Writable } from 'node:stream';
import { FTRACE_HELPER_LINK } from '../guest/ftrace-helper.js';
import type { Spec } from '../spec/schema.js';
import { LIBBPF_TOOLS } from '../spec/tracing.js';
import type { VmRecord } from '../vm/registry.js';
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

/** List the guest's /usr/sbin and /usr/bin over SSH. */
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
  await sshExec(rec, ['/bin/sh', '-c', 'for f in /usr/sbin/* /usr/bin/*; do echo "$f"; done'], {
    stdout: sink(),
    stderr: new Writable({ write: (_b, _e, cb) => cb() }),
  });
  return { ...toolsFromListing(Buffer.concat(chunks).toString('utf8').split('\n')), vm: rec.name };
}
