/**
 * The small pieces every SVG renderer shares: XML escaping (XML 1.0, section 2.2 for
 * which characters may appear at all) and number formatting that gives the same bytes
 * on every run.
 */

// Characters XML 1.0 forbids even as references: C0 controls other than tab, LF and
// CR, lone surrogates, U+FFFE and U+FFFF.
const INVALID = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/**
 * Text safe inside an element or a double- or single-quoted attribute. Characters XML
 * cannot carry become U+FFFD; tab, LF and CR become references so attribute-value
 * normalization keeps them.
 */
export function escapeXml(s: string): string {
  return s.replace(INVALID, '\uFFFD').replace(/[&<>"'\t\n\r]/g, (c) => ENTITY[c]!);
}

const ENTITY: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

/**
 * The opening of a chart: XML declaration, the <svg> element, the shared text
 * styles plus `styles`, a white background and the centred title.
 */
export function svgOpen(width: number, height: number, title: string, styles: string[]): string[] {
  return [
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    '<style>',
    `text { font-family: Verdana, "DejaVu Sans", sans-serif; font-size: ${CHART_FONT}px; fill: rgb(0,0,0); }`,
    '.title { font-size: 17px; text-anchor: middle; }',
    '.sub { text-anchor: middle; fill: rgb(90,90,90); }',
    ...styles,
    '</style>',
    `<rect x="0" y="0" width="${width}" height="${height}" fill="rgb(255,255,255)"/>`,
    `<text class="title" x="${num(width / 2)}" y="24">${escapeXml(title)}</text>`,
  ];
}

/** Font size of chart text (the histogram and the boot timeline). */
export const CHART_FONT = 12;

/** A coordinate with at most two decimals and no `-0`. */
export function num(n: number): string {
  const r = Math.round(n * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

/** A count as people read it: integers as they are, fractions with two decimals. */
export function countText(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

/** `12.34%` of a total (0% of nothing). */
export function percentText(part: number, total: number): string {
  return `${total > 0 ? ((part * 100) / total).toFixed(2) : '0.00'}%`;
}

/**
 * 1, 2 or 5 times a power of ten, so that `max` needs about `ticks` steps: the spacing
 * of axis ticks.
 */
export function niceStep(max: number, ticks: number): number {
  if (!(max > 0) || !Number.isFinite(max)) return 1;
  const raw = max / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  // a denormal `max` underflows to a zero step, and an axis loop would never end
  if (!(pow > 0) || !Number.isFinite(pow)) return max;
  const f = raw / pow;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
}
