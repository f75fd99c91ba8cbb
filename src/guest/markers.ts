/**
 * Markers the guest prints on its console so the host can follow a boot without
 * guessing from free text. One line each: `@@kjx:<event>[ key=value...]`.
 */
export const MARKER_PREFIX = '@@kjx:';

/** The events of docs/guest-protocol.md. */
export type MarkerEvent = 'init' | 'stage2' | 'service' | 'task' | 'hostkey' | 'ready' | 'exit';

export interface Marker {
  event: string;
  fields: Record<string, string>;
}

/** Parse one console line; undefined when it carries no marker. */
export function parseMarker(line: string): Marker | undefined {
  const at = line.indexOf(MARKER_PREFIX);
  if (at < 0) return undefined;
  const [event, ...rest] = line
    .slice(at + MARKER_PREFIX.length)
    .trim()
    .split(/\s+/);
  if (!event) return undefined;
  const fields: Record<string, string> = {};
  for (const kv of rest) {
    const eq = kv.indexOf('=');
    if (eq > 0) fields[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { event, fields };
}

/** The shell line that prints a marker (fields are trusted, generated values). */
export function markerShell(event: MarkerEvent, fields: string): string {
  return `echo "${MARKER_PREFIX}${event}${fields ? ` ${fields}` : ''}"`;
}
