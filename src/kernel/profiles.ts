/**
 * What each `kernel.config` profile starts from: the all*config target Kconfig runs
 * with the merged fragments (KCONFIG_ALLCONFIG), and the fragments themselves,
 * the way scripts/kconfig/merge_config.sh merges (`-n` for allnoconfig). `vm` is
 * kjx's own (profiles/vm.config); `defconfig` and `tinyconfig` are the kernel's,
 * read from the source tree being built. Every profile gets profiles/kjx.config,
 * what kjx's guest needs to boot at all (PVH, serial, virtio, fw_cfg, ...).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KernelProfile } from '../spec/kernel-config.js';
import { type ConfigOption, parseFragment } from './config.js';

export interface ProfileBase {
  /** The Kconfig target run with KCONFIG_ALLCONFIG: options nobody set get `n` or their default. */
  target: 'allnoconfig' | 'alldefconfig';
  fragments: ConfigOption[][];
}

/** kjx's own profile file (shipped beside the compiled modules, like the guest's shell files). */
export function kjxProfileText(name: 'vm' | 'kjx'): string {
  return readFileSync(new URL(`./profiles/${name}.config`, import.meta.url), 'utf8');
}

export function profileBase(name: KernelProfile, srcDir: string): ProfileBase {
  const fromTree = (rel: string) => parseFragment(readFileSync(join(srcDir, rel), 'utf8'), rel);
  const kjx = parseFragment(kjxProfileText('kjx'), 'kjx.config');
  switch (name) {
    case 'vm':
      return { target: 'allnoconfig', fragments: [parseFragment(kjxProfileText('vm'), 'vm.config'), kjx] };
    case 'defconfig':
      return { target: 'alldefconfig', fragments: [fromTree('arch/x86/configs/x86_64_defconfig'), kjx] };
    case 'tinyconfig':
      return {
        target: 'allnoconfig',
        fragments: [fromTree('kernel/configs/tiny.config'), fromTree('arch/x86/configs/tiny.config'), kjx],
      };
  }
}
