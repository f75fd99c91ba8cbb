/** `kjx cluster timeline`: the cluster's timeline (timeline.ts) drawn and written. */
import { join } from 'node:path';
import { bootTimelineSvg } from '../trace/svg-timeline.js';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import { clusterDir, readBoots, readEvents } from './state.js';
import { type ClusterTimeline, clusterTimeline } from './timeline.js';

export const CLUSTER_TIMELINE_FILE = 'timeline.svg';

/** Write the SVG to `output` (default: the cluster's state directory); its path and what it shows. */
export function writeClusterTimeline(name: string, output?: string): { path: string; data: ClusterTimeline } {
  const boots = readBoots(name);
  if (boots.length === 0) {
    throw new KjxError('USAGE', `cluster "${name}" has no recorded boots`, {
      hint: 'bring it up first: kjx cluster up (the timeline covers the boots since the last up)',
    });
  }
  const data = clusterTimeline(boots, readEvents(name));
  const nodes = new Set(boots.map((b) => b.node)).size;
  const path = output ?? join(clusterDir(name), CLUSTER_TIMELINE_FILE);
  writeFileAtomic(
    path,
    bootTimelineSvg(data.timeline, {
      title: `cluster ${name}: ${nodes} nodes, ${boots.length} boots`,
      subtitle: `from ${data.origin}; events of events.jsonl as marks`,
      axis: 'seconds since the first node started',
      marks: data.marks,
    }),
  );
  return { path, data };
}
