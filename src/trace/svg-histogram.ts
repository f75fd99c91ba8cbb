/**
 * A histogram (`Log2Hist`) as an SVG bar chart laid out like the libbpf-tools text:
 * one horizontal bar per bucket, top to bottom from the smallest values, the bucket
 * (`0 -> 1`) on the left, its count after the bar, a count axis below. Each bar's
 * tooltip gives the bucket, count and share. Deterministic output.
 */
import { bucketLabel, type Log2Hist } from './histogram.js';
import { countText, escapeXml, niceStep, num, percentText, svgOpen } from './xml.js';

export interface HistogramSvgOptions {
  title: string;
  /** Image width in pixels (default 900). */
  width?: number;
}

const ROW = 20;

/** Glyph width estimate for laying out the label column (monospace-ish digits). */
const GLYPH = 7.2;

/** The histogram as a standalone SVG document. */
export function histogramSvg(h: Log2Hist, o: HistogramSvgOptions): string {
  const width = o.width ?? 900;
  const labels = h.buckets.map(bucketLabel);
  const total = h.buckets.reduce((s, b) => s + b.count, 0);
  const max = h.buckets.reduce((m, b) => Math.max(m, b.count), 0);
  const labelW = Math.max(h.unit.length, ...labels.map((l) => l.length), 4) * GLYPH;
  const x0 = 20 + labelW + 10;
  const maxCountW = countText(max).length * GLYPH + 12;
  const barMax = Math.max(50, width - x0 - maxCountW - 20);
  const step = Math.max(1, niceStep(max, 8)); // counts are whole numbers
  const axisMax = max > 0 ? Math.ceil(max / step) * step : 1;
  const scale = barMax / axisMax;
  const top = 70 + (h.label ? 16 : 0);
  const rows = Math.max(h.buckets.length, 1);
  const axisY = top + rows * ROW + 6;
  const height = axisY + 50;

  const p: string[] = [];
  p.push(
    ...svgOpen(width, height, o.title, [
      '.lbl { text-anchor: end; font-family: "DejaVu Sans Mono", monospace; }',
      '.axis { stroke: rgb(80,80,80); stroke-width: 1; }',
      '.grid { stroke: rgb(220,220,220); stroke-width: 1; }',
      '.b:hover rect { fill: rgb(200,60,20); }',
    ]),
  );
  if (h.label) p.push(`<text class="sub" x="${num(width / 2)}" y="42">${escapeXml(h.label)}</text>`);
  p.push(
    `<text class="sub" x="${num(width / 2)}" y="${h.label ? 58 : 42}">${escapeXml(`${countText(total)} in ${h.buckets.length} buckets`)}</text>`,
    `<text x="${num(x0 - 10)}" y="${top - 8}" text-anchor="end" font-weight="bold">${escapeXml(h.unit)}</text>`,
    `<text x="${num(x0)}" y="${top - 8}" font-weight="bold">count</text>`,
  );
  // grid and count axis
  for (let t = 0; t * step <= axisMax; t++) {
    const v = t * step;
    const x = num(x0 + v * scale);
    p.push(
      `<line class="grid" x1="${x}" y1="${top}" x2="${x}" y2="${axisY}"/>`,
      `<line class="axis" x1="${x}" y1="${axisY}" x2="${x}" y2="${axisY + 4}"/>`,
      `<text x="${x}" y="${axisY + 17}" text-anchor="middle">${escapeXml(countText(v))}</text>`,
    );
  }
  p.push(
    `<line class="axis" x1="${num(x0)}" y1="${axisY}" x2="${num(x0 + axisMax * scale)}" y2="${axisY}"/>`,
    `<line class="axis" x1="${num(x0)}" y1="${top}" x2="${num(x0)}" y2="${axisY}"/>`,
    `<text x="${num(x0 + barMax / 2)}" y="${axisY + 38}" text-anchor="middle">count per bucket of ${escapeXml(h.unit)}</text>`,
  );
  if (h.buckets.length === 0) {
    p.push(`<text x="${num(x0 + 10)}" y="${top + 14}">no data</text>`);
  }
  h.buckets.forEach((b, i) => {
    const y = top + i * ROW;
    const w = b.count * scale;
    const label = escapeXml(labels[i]!);
    p.push(
      '<g class="b">' +
        `<title>${label} ${escapeXml(h.unit)}: ${escapeXml(countText(b.count))} (${percentText(b.count, total)})</title>` +
        `<text class="lbl" x="${num(x0 - 10)}" y="${y + 14}">${label}</text>` +
        `<rect x="${num(x0)}" y="${y + 3}" width="${num(w)}" height="${ROW - 6}" fill="rgb(235,120,40)"/>` +
        `<text x="${num(x0 + w + 5)}" y="${y + 14}">${escapeXml(countText(b.count))}</text>` +
        '</g>',
    );
  });
  p.push('</svg>', '');
  return p.join('\n');
}
