/**
 * A `BootTimeline` as an SVG in the manner of `systemd-analyze plot`: a time axis in
 * seconds since QEMU was spawned, one bar per boot phase, then one per service, light
 * from start to ready and dark from ready to stop, with the service's name and ready
 * time written next to it (`ssh ready 3.91 s`). Deterministic output.
 */
import type { BootTimeline, TimelineRow } from './boot-timeline.js';
import { escapeXml, niceStep, num, svgOpen } from './xml.js';

export interface TimelineSvgOptions {
  title: string;
  subtitle?: string;
  /** Image width in pixels (default 1200). */
  width?: number;
  /** Moments drawn as labelled vertical lines across every row (a cluster's faults). */
  marks?: TimelineMark[];
  /** What the axis counts from (default: QEMU's start). */
  axis?: string;
}

export interface TimelineMark {
  /** Seconds on the axis. */
  at: number;
  label: string;
}

const PAD = 20;
const ROW = 22;

const GLYPH = 7;

const PHASE_COLORS: Record<string, string> = {
  firmware: 'rgb(180,180,180)',
  kernel: 'rgb(110,150,220)',
  'stage 1': 'rgb(240,190,110)',
  'stage 2': 'rgb(230,150,60)',
  command: 'rgb(120,190,110)',
  poweroff: 'rgb(160,160,160)',
};
const STARTING = 'rgb(250,190,180)';
const ACTIVE = 'rgb(215,80,60)';

/** `3.91` */
function sec(t: number): string {
  return t.toFixed(2);
}

/** The words next to a row's bar. */
export function rowText(r: TimelineRow): string {
  const who = r.node !== undefined ? `${r.node}: ` : '';
  if (r.kind === 'phase') return `${who}${r.name} ${sec(r.end - r.start)} s`;
  const parts = [
    `${who}${r.ready !== undefined ? `${r.name} ready ${sec(r.ready)} s` : `${r.name} not ready`}`,
  ];
  if (r.restarts) parts.push(`restarted ${r.restarts}x`);
  if (r.stopped !== undefined) parts.push(`down ${sec(r.stopped)} s`);
  return parts.join(', ');
}

/** Host times, and for services the guest uptime the guest reported too. */
function tooltip(r: TimelineRow, timelineOffset: number): string {
  const offset = r.offset ?? timelineOffset;
  const name = r.node !== undefined ? `${r.node} ${r.name}` : r.name;
  if (r.kind === 'phase') return `${name}: ${sec(r.start)} -> ${sec(r.end)} s (${sec(r.end - r.start)} s)`;
  const at = (t: number) => `${sec(t)} s (uptime ${sec(t - offset)} s)`;
  const ready = r.ready !== undefined ? `, ready ${at(r.ready)}, +${sec(r.ready - r.start)} s` : '';
  return `${name}: up ${at(r.start)}${ready}${r.stopped !== undefined ? `, down ${at(r.stopped)}` : ''}`;
}

/** The timeline as a standalone SVG document. */
export function bootTimelineSvg(t: BootTimeline, o: TimelineSvgOptions): string {
  const width = o.width ?? 1200;
  const end = t.end > 0 ? t.end : 1;
  const texts = t.rows.map(rowText);
  // leave room right of the last bar for its words
  const longest = Math.max(0, ...texts.map((s) => s.length)) * GLYPH;
  const plotW = Math.max(200, width - 2 * PAD - Math.min(longest, width / 3));
  const scale = plotW / end;
  const x = (s: number) => PAD + s * scale;
  const top = 70 + (o.subtitle ? 16 : 0);
  const bottom = top + Math.max(1, t.rows.length) * ROW;
  const marks = o.marks ?? [];
  // one line of words per mark under the rows, so close marks never overlap
  const height = bottom + 60 + marks.length * 16;
  const step = niceStep(end, 12);
  const digits = step >= 1 ? 0 : step >= 0.1 ? 1 : 2;

  const p: string[] = [];
  p.push(
    ...svgOpen(width, height, o.title, [
      '.tick { text-anchor: middle; fill: rgb(90,90,90); font-size: 11px; }',
      '.grid { stroke: rgb(225,225,225); stroke-width: 1; }',
      '.ready { stroke: rgb(40,140,40); stroke-width: 1.5; stroke-dasharray: 4 3; }',
      '.row:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }',
      'line.mark { stroke: rgb(120,40,160); stroke-width: 1.5; stroke-dasharray: 2 2; }',
    ]),
  );
  if (o.subtitle) p.push(`<text class="sub" x="${num(width / 2)}" y="42">${escapeXml(o.subtitle)}</text>`);
  const axisY = top - 8;
  for (let i = 0; i * step <= end + step * 1e-9; i++) {
    const s = i * step;
    const gx = num(x(s));
    p.push(
      `<line class="grid" x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${bottom}"/>`,
      `<text class="tick" x="${gx}" y="${axisY}">${s.toFixed(digits)} s</text>`,
    );
  }
  t.rows.forEach((r, i) => {
    const y = top + i * ROW;
    const x0 = x(r.start);
    const x1 = Math.max(x(r.end), x0 + 1);
    const bars: string[] = [];
    if (r.kind === 'phase') {
      bars.push(bar(x0, y, x1 - x0, PHASE_COLORS[r.name] ?? 'rgb(200,200,200)'));
    } else {
      const xr = r.ready !== undefined ? Math.min(Math.max(x(r.ready), x0), x1) : x1;
      if (xr > x0) bars.push(bar(x0, y, xr - x0, STARTING));
      if (x1 > xr) bars.push(bar(xr, y, x1 - xr, ACTIVE));
    }
    // words right of the bar (black on the dark bar reads badly); left of it if they do not fit
    const words = texts[i]!;
    const fits = x1 + 5 + words.length * GLYPH <= width - 4;
    const tx = fits ? x1 + 5 : x0 - 5;
    p.push(
      `<g class="row ${r.kind}">` +
        `<title>${escapeXml(tooltip(r, t.offset))}</title>` +
        bars.join('') +
        `<text x="${num(tx)}" y="${y + 15}"${fits ? '' : ' text-anchor="end"'}>${escapeXml(words)}</text>` +
        '</g>',
    );
  });
  if (t.rows.length === 0) p.push(`<text x="${PAD}" y="${top + 15}">no boot phases recorded</text>`);
  if (t.ready !== undefined) {
    const rx = num(x(t.ready));
    p.push(
      `<line class="ready" x1="${rx}" y1="${top - 4}" x2="${rx}" y2="${bottom}"/>`,
      `<text x="${rx}" y="${bottom + 16}" text-anchor="middle" fill="rgb(40,140,40)">all ready ${sec(t.ready)} s</text>`,
    );
  }
  marks.forEach((m, i) => {
    const mx = num(x(m.at));
    const my = bottom + 34 + i * 16;
    const right = x(m.at) > width / 2;
    p.push(
      `<g class="mark"><title>${escapeXml(`${m.label} at ${sec(m.at)} s`)}</title>` +
        `<line class="mark" x1="${mx}" y1="${top - 4}" x2="${mx}" y2="${my - 10}"/>` +
        `<text x="${num(right ? x(m.at) - 4 : x(m.at) + 4)}" y="${my}"${right ? ' text-anchor="end"' : ''} fill="rgb(120,40,160)">${escapeXml(`${m.label} ${sec(m.at)} s`)}</text></g>`,
    );
  });
  const ly = bottom + 36 + marks.length * 16 + (marks.length > 0 ? 10 : 0);
  p.push(
    bar(PAD, ly - 12, 14, STARTING),
    `<text x="${PAD + 20}" y="${ly}">starting</text>`,
    bar(PAD + 100, ly - 12, 14, ACTIVE),
    `<text x="${PAD + 120}" y="${ly}">ready</text>`,
    `<text x="${PAD + 190}" y="${ly}" fill="rgb(90,90,90)">${escapeXml(o.axis ?? 'seconds since QEMU started')}; guest times shifted by the kernel start</text>`,
    '</svg>',
    '',
  );
  return p.join('\n');
}

function bar(x: number, y: number, w: number, fill: string): string {
  return `<rect x="${num(x)}" y="${num(y + 3)}" width="${num(w)}" height="${ROW - 6}" fill="${fill}"/>`;
}
