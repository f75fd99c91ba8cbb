/** The component registry: spec names -> components. A new component is one line here. */
import type { Spec } from '../spec/schema.js';
import { bpftool } from './bpftool.js';
import { bpftrace } from './bpftrace.js';
import { busybox, busyboxStatic } from './busybox.js';
import type { Component } from './component.js';
import { containerd } from './containerd.js';
import { crun } from './crun.js';
import { docker } from './docker.js';
import { dropbear } from './dropbear.js';
import { ftrace } from './ftrace.js';
import { gvisor } from './gvisor.js';
import { libbpfTools } from './libbpf-tools.js';
import { podman } from './podman.js';
import { runc } from './runc.js';
import { runit } from './runit.js';

export const COMPONENTS: Record<Spec['components'][number], Component> = {
  busybox,
  'busybox-static': busyboxStatic,
  runit,
  dropbear,
  ftrace,
  'libbpf-tools': libbpfTools,
  bpftrace,
  bpftool,
  runc,
  crun,
  gvisor,
  containerd,
  podman,
  docker,
};

export function componentsOf(spec: Spec): Component[] {
  return spec.components.map((n) => COMPONENTS[n]);
}
