/** The component registry: spec names -> components. A new component is one line here. */
import type { Spec } from '../spec/schema.js';
import { busybox, busyboxStatic } from './busybox.js';
import type { Component } from './component.js';
import { dropbear } from './dropbear.js';
import { runit } from './runit.js';

export const COMPONENTS: Record<Spec['components'][number], Component> = {
  busybox,
  'busybox-static': busyboxStatic,
  runit,
  dropbear,
};

export function componentsOf(spec: Spec): Component[] {
  return spec.components.map((n) => COMPONENTS[n]);
}
