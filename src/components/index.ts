/** The component registry: spec names -> built-in components. A new component is one line here. */
import { bpftool } from './bpftool.js';
import { bpftrace } from './bpftrace.js';
import { busybox, busyboxStatic } from './busybox.js';
import type { Component } from './component.js';
import { containerd } from './containerd.js';
import { crun } from './crun.js';
import { docker } from './docker.js';
import { dropbear } from './dropbear.js';
import { etcd } from './etcd.js';
import { ftrace } from './ftrace.js';
import { gvisor } from './gvisor.js';
import { libbpfTools } from './libbpf-tools.js';
import { podman } from './podman.js';
import { runc } from './runc.js';
import { runit } from './runit.js';

export const COMPONENTS = {
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
  etcd,
} satisfies Record<string, Component>;

/** Names of the built-in components, in the registry's order. */
export const COMPONENT_NAMES: readonly string[] = Object.keys(COMPONENTS);

/** The built-in component of that name, if there is one. */
export function builtinComponent(name: string): Component | undefined {
  return Object.hasOwn(COMPONENTS, name) ? (COMPONENTS as Record<string, Component>)[name] : undefined;
}
