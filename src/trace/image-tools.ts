/**
 * What an image offers to tracers: from its spec (an ephemeral VM boots what the
 * spec builds), or probed over SSH in a detached VM (which may run an older build),
 * and what a trace of it needs.
 */
import { Writable } from 'node:stream';
import { builtinComponent, COMPONENT_NAMES } from '../components/index.js';
import { LIBBPF_TOOLS_DIR } from '../components/libbpf-tools.js';
import { planComponents } from '../plan/components.js';
import type { Spec } from '../spec/schema.js';
import { LIBBPF_TOOLS } from '../spec/tracing.js';
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
  };
}

/** From the file names in /usr/sbin and /usr/bin of a guest: a component is there when a file it ships is. */
export function toolsFromListing(paths: string[]): ImageTools {
  const names = new Set(paths.map((p) => p.trim()).filter(Boolean));
  const libbpfTools = LIBBPF_TOOLS.filter((t) => names.has(`${LIBBPF_TOOLS_DIR}/${t}`));
  const components = COMPONENT_NAMES.filter((n) => builtinComponent(n)?.probe?.some((p) => names.has(p)));
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
