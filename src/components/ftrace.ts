/**
 * ftrace: tracefs is mounted by every image (stage 1's fstab); this component adds
 * `kjx-ftrace`, the helper `kjx trace` drives for its tracefs tracers (funccount,
 * the runqlat fallback, syscalls, exec), and which people can run in the guest
 * themselves. No package: the kernel has everything (src/guest/ftrace-helper.ts).
 */
import { FTRACE_HELPER, FTRACE_HELPER_LINK, ftraceHelperScript } from '../guest/ftrace-helper.js';
import { addEntry, ensureParents, mk, newTree, type Tree } from '../rootfs/tree.js';
import { dataComponent } from './data.js';

function helperTree(): Tree {
  const src = { kind: 'generated', by: 'ftrace component' } as const;
  const out = newTree();
  addEntry(out, mk.file(FTRACE_HELPER, ftraceHelperScript(), src, 0o755));
  addEntry(out, mk.symlink(FTRACE_HELPER_LINK, FTRACE_HELPER, src));
  ensureParents(out, src);
  return out;
}

export const ftrace = dataComponent({
  name: 'ftrace',
  generated: helperTree,
  probe: [FTRACE_HELPER_LINK],
});
