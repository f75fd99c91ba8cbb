/** bpftool from Debian's `bpftool`: inspect loaded BPF programs, maps, links and BTF in the guest. */
import { type Component, takeFiles } from './component.js';

export const BPFTOOL_FILES = ['/usr/sbin/bpftool'];

export const bpftool: Component = {
  name: 'bpftool',
  packages: () => ['bpftool'],
  assemble: (ctx) => takeFiles('bpftool', ctx.staged('bpftool'), BPFTOOL_FILES),
};
