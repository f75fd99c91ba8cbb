/**
 * An interactive flame graph as one SVG file, in the manner of Brendan Gregg's
 * flamegraph.pl (https://www.brendangregg.com/flamegraphs.html): x is the share of
 * samples, y the stack depth with the root ("all") at the bottom, siblings sorted by
 * name so equal frames merge. Open the file in a browser: hover shows a frame's
 * samples, click zooms into it, "Search" (or Ctrl-F) highlights frames matching a
 * regular expression and shows the share they cover.
 *
 * Output is a pure function of the input: no clock, no randomness, colours from a
 * hash of the frame name.
 */
import type { FoldedStack } from './folded.js';
import { countText, escapeXml, num, percentText } from './xml.js';

export interface FlameGraphOptions {
  title: string;
  subtitle?: string;
  /** What a count is: `samples` (default), `us` for off-CPU time, ... */
  countName?: string;
  /** Image width in pixels (default 1200). */
  width?: number;
}

interface Node {
  name: string;
  value: number;
  children: Map<string, Node>;
}

interface Frame {
  name: string;
  depth: number;
  /** Offset and width in counts, not pixels: the script zooms by them. */
  x: number;
  value: number;
}

const PAD = 10;
const FRAME_H = 16;
const FONT = 12;
/** Average glyph width of the font as a share of its size, to decide how much text fits. */
const GLYPH = 0.59;
/** Frames narrower than this many pixels are left out, as flamegraph.pl does. */
const MIN_WIDTH = 0.1;

/** The merged call tree: root "all", children keyed by frame name. */
function buildTree(stacks: FoldedStack[]): Node {
  const root: Node = { name: 'all', value: 0, children: new Map() };
  for (const s of stacks) {
    if (!(s.count > 0)) continue;
    root.value += s.count;
    let node = root;
    for (const f of s.frames) {
      let child = node.children.get(f);
      if (!child) {
        child = { name: f, value: 0, children: new Map() };
        node.children.set(f, child);
      }
      child.value += s.count;
      node = child;
    }
  }
  return root;
}

/** Frames in document order (parents before children, siblings by name), narrow ones dropped. */
function layout(root: Node, minValue: number): Frame[] {
  const out: Frame[] = [];
  const walk = (n: Node, depth: number, x: number) => {
    if (n.value < minValue) return;
    out.push({ name: n.name, depth, x, value: n.value });
    let cx = x;
    const kids = [...n.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const k of kids) {
      walk(k, depth + 1, cx);
      cx += k.value;
    }
  };
  walk(root, 0, 0);
  return out;
}

/** FNV-1a over the UTF-16 units of the name: a stable colour per function. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A warm colour (reds, oranges, yellows) from the name; green stays low enough for black text. */
export function frameColor(name: string): string {
  const h = hash(name);
  const v1 = (h & 0xff) / 255;
  const v2 = ((h >>> 8) & 0xff) / 255;
  const v3 = ((h >>> 16) & 0xff) / 255;
  return `rgb(${205 + Math.round(50 * v3)},${70 + Math.round(150 * v1)},${Math.round(55 * v2)})`;
}

/** As much of the name as fits in `px` pixels, with `..` when cut; '' when not even 3 characters fit. */
export function fitText(name: string, px: number): string {
  const chars = Math.floor(px / (FONT * GLYPH));
  if (chars < 3) return '';
  return name.length <= chars ? name : `${name.slice(0, chars - 2)}..`;
}

/** The flame graph of `stacks` as a standalone SVG document. */
export function flameGraphSvg(stacks: FoldedStack[], o: FlameGraphOptions): string {
  const width = o.width ?? 1200;
  const countName = o.countName ?? 'samples';
  const root = buildTree(stacks);
  const total = root.value;
  const perCount = total > 0 ? (width - 2 * PAD) / total : 0;
  const frames = total > 0 ? layout(root, MIN_WIDTH / perCount) : [];
  const maxDepth = frames.reduce((m, f) => Math.max(m, f.depth), 0);
  const top = FONT * 3 + (o.subtitle ? FONT * 1.5 : 0);
  const bottom = FONT * 2 + 10;
  const height = Math.ceil(top + (maxDepth + 1) * FRAME_H + bottom);

  const parts: string[] = [];
  parts.push(
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" data-total="${num(total)}" data-count-name="${escapeXml(countName)}">`,
    '<style>',
    `text { font-family: Verdana, "DejaVu Sans", sans-serif; font-size: ${FONT}px; fill: rgb(0,0,0); }`,
    '#title { font-size: 17px; text-anchor: middle; }',
    '#subtitle { text-anchor: middle; fill: rgb(100,100,100); }',
    '.f { cursor: pointer; }',
    '.f:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }',
    '.f text { pointer-events: none; }',
    '.parent { opacity: 0.5; }',
    '.hide { display: none; }',
    '.btn { cursor: pointer; fill: rgb(0,0,160); }',
    '</style>',
    '<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1"><stop stop-color="#eeeeee" offset="5%"/><stop stop-color="#eeeeb0" offset="95%"/></linearGradient></defs>',
    `<rect x="0" y="0" width="${width}" height="${height}" fill="url(#bg)"/>`,
    `<text id="title" x="${num(width / 2)}" y="${FONT * 2}">${escapeXml(o.title)}</text>`,
  );
  if (o.subtitle) {
    parts.push(`<text id="subtitle" x="${num(width / 2)}" y="${FONT * 3.5}">${escapeXml(o.subtitle)}</text>`);
  }
  parts.push(
    `<text id="unzoom" class="btn hide" x="${PAD}" y="${FONT * 2}">Reset Zoom</text>`,
    `<text id="search" class="btn" x="${width - PAD}" y="${FONT * 2}" text-anchor="end">Search</text>`,
    `<text id="details" x="${PAD}" y="${height - FONT}"> </text>`,
    `<text id="matched" x="${width - PAD}" y="${height - FONT}" text-anchor="end"> </text>`,
  );
  if (total === 0) {
    parts.push(
      `<text x="${num(width / 2)}" y="${num(top + FRAME_H)}" text-anchor="middle">no ${escapeXml(countName)}</text>`,
    );
  }
  parts.push('<g id="frames">');
  for (const f of frames) {
    const x = PAD + f.x * perCount;
    const w = f.value * perCount;
    const y = height - bottom - (f.depth + 1) * FRAME_H;
    const name = escapeXml(f.name);
    const info = `${name} (${escapeXml(countText(f.value))} ${escapeXml(countName)}, ${percentText(f.value, total)})`;
    parts.push(
      `<g class="f" data-n="${name}" data-x="${num(f.x)}" data-v="${num(f.value)}" data-d="${f.depth}">` +
        `<title>${info}</title>` +
        `<rect x="${num(x)}" y="${num(y)}" width="${num(w)}" height="${FRAME_H - 1}" rx="2" ry="2" fill="${frameColor(f.name)}"/>` +
        `<text x="${num(x + 3)}" y="${num(y + FRAME_H - 4.5)}">${escapeXml(fitText(f.name, w - 6))}</text>` +
        '</g>',
    );
  }
  parts.push('</g>', `<script type="text/ecmascript"><![CDATA[${script(width)}]]></script>`, '</svg>', '');
  return parts.join('\n');
}

/**
 * The browser side: zoom, search, details. Frames carry their name, offset, width (in
 * counts) and depth as data attributes; zooming recomputes rectangles from those.
 * No input text ever goes into the script itself: names are read from attributes and
 * written back with textContent.
 */
function script(width: number): string {
  return `
(function () {
  'use strict';
  var svg = document.documentElement;
  var W = ${width}, PAD = ${PAD}, CHAR = ${FONT * GLYPH}, MIN = ${MIN_WIDTH};
  var total = Number(svg.getAttribute('data-total'));
  var frames = Array.prototype.slice.call(document.querySelectorAll('g.f'));
  var details = document.getElementById('details');
  var matched = document.getElementById('matched');
  var unzoomBtn = document.getElementById('unzoom');
  var searchBtn = document.getElementById('search');
  var zoom = null;
  var pattern = null;
  var eps = total * 1e-9;

  function attr(g, n) { return Number(g.getAttribute('data-' + n)); }
  function fit(name, px) {
    var chars = Math.floor(px / CHAR);
    if (chars < 3) return '';
    return name.length <= chars ? name : name.slice(0, chars - 2) + '..';
  }
  function place(g, x, w) {
    var r = g.querySelector('rect'), t = g.querySelector('text');
    r.setAttribute('x', x.toFixed(2));
    r.setAttribute('width', w.toFixed(2));
    t.setAttribute('x', (x + 3).toFixed(2));
    t.textContent = fit(g.getAttribute('data-n'), w - 6);
  }
  function layout() {
    var zx = zoom ? zoom.x : 0, zv = zoom ? zoom.v : total, zd = zoom ? zoom.d : 0;
    var scale = (W - 2 * PAD) / zv;
    frames.forEach(function (g) {
      var x = attr(g, 'x'), v = attr(g, 'v'), d = attr(g, 'd');
      g.classList.remove('hide');
      g.classList.remove('parent');
      if (d < zd && x <= zx + eps && x + v >= zx + zv - eps) {
        g.classList.add('parent');
        place(g, PAD, W - 2 * PAD);
      } else if (d >= zd && x >= zx - eps && x + v <= zx + zv + eps && v * scale >= MIN) {
        place(g, PAD + (x - zx) * scale, v * scale);
      } else {
        g.classList.add('hide');
      }
    });
    unzoomBtn.classList.toggle('hide', !zoom);
    if (pattern) search(pattern);
  }
  function zoomTo(g) {
    zoom = attr(g, 'd') === 0 ? null : { x: attr(g, 'x'), v: attr(g, 'v'), d: attr(g, 'd') };
    layout();
  }
  function search(re) {
    pattern = re;
    var spans = [];
    frames.forEach(function (g) {
      var r = g.querySelector('rect');
      if (!r.hasAttribute('data-fill')) r.setAttribute('data-fill', r.getAttribute('fill'));
      var hit = re !== null && re.test(g.getAttribute('data-n'));
      r.setAttribute('fill', hit ? 'rgb(230,0,230)' : r.getAttribute('data-fill'));
      if (hit) spans.push([attr(g, 'x'), attr(g, 'v')]);
    });
    if (re === null) {
      matched.textContent = ' ';
      searchBtn.textContent = 'Search';
      return;
    }
    // nested matches count once: sort by offset, widest first, skip what a counted span covers
    spans.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });
    var sum = 0, end = -Infinity;
    spans.forEach(function (s) {
      if (s[0] + s[1] <= end + eps) return;
      sum += s[1];
      end = s[0] + s[1];
    });
    matched.textContent = 'Matched: ' + (total > 0 ? (sum * 100 / total).toFixed(2) : '0.00') + '%';
    searchBtn.textContent = 'Reset Search';
  }
  function askSearch() {
    var term = window.prompt('Search frames (regular expression):', '');
    if (!term) return;
    var re;
    try { re = new RegExp(term); } catch (e) { re = new RegExp(term.replace(/[.*+?^$()|[\\]{}\\\\]/g, '\\\\$&')); }
    search(re);
  }
  frames.forEach(function (g) {
    g.addEventListener('click', function () { zoomTo(g); });
    g.addEventListener('mouseover', function () {
      details.textContent = 'Function: ' + g.querySelector('title').textContent;
    });
    g.addEventListener('mouseout', function () { details.textContent = ' '; });
  });
  unzoomBtn.addEventListener('click', function () { zoom = null; layout(); });
  searchBtn.addEventListener('click', function () { if (pattern) search(null); else askSearch(); });
  window.addEventListener('keydown', function (e) {
    if ((e.ctrlKey || e.metaKey) && (e.key === 'f' || e.key === 'F')) { e.preventDefault(); askSearch(); }
    else if (e.key === 'F3') { e.preventDefault(); askSearch(); }
    else if (e.key === 'Escape') { if (pattern) search(null); }
  });
  svg.setAttribute('data-ready', '1');
})();
`;
}
