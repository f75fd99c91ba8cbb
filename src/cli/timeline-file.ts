/**
 * `--timing` for `kjx run` and `kjx boot`: the boot as a picture, `boot-timeline.svg`
 * in the VM's state directory (src/trace/ draws it; this file only names and writes it).
 */
import { join } from 'node:path';
import { bootTimeline } from '../trace/boot-timeline.js';
import { bootTimelineSvg } from '../trace/svg-timeline.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { BootTiming } from '../vm/boot-phases.js';

export const TIMELINE_FILE = 'boot-timeline.svg';

/** Write the timeline of one boot into `stateDir` and return its path. */
export function writeBootTimeline(
  stateDir: string,
  boot: BootTiming,
  what: { title: string; accel: string },
): string {
  const t = bootTimeline(boot.phases, boot.services);
  const ready = t.ready !== undefined ? `, services ready at ${t.ready.toFixed(2)} s` : '';
  const path = join(stateDir, TIMELINE_FILE);
  writeFileAtomic(path, bootTimelineSvg(t, { title: what.title, subtitle: `${what.accel}${ready}` }));
  return path;
}
