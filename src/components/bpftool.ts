/** bpftool from Debian's `bpftool`: inspect loaded BPF programs, maps, links and BTF in the guest. */
import { dataComponent } from './data.js';

export const BPFTOOL_FILES = ['/usr/sbin/bpftool'];

export const bpftool = dataComponent({
  name: 'bpftool',
  take: [{ package: 'bpftool', paths: BPFTOOL_FILES }],
  probe: BPFTOOL_FILES,
});
