/**
 * The SVGs as a browser sees them: headless Chromium (a `test` host tool, see
 * `kjx doctor --for test`) loads each picture twice. `--dump-dom` shows whether the
 * document parsed (an XML error becomes a <parsererror> page) and whether the flame
 * graph's script ran without errors (console errors go to stderr with
 * --enable-logging); `--screenshot` gives pixels, which must not be blank and must
 * show the bars where the layout put them.
 *
 * Chromium runs in its own process group with its own profile directory, and the
 * group is killed after every run, so no browser outlives a test.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import { bootTimeline } from '../../src/trace/boot-timeline.js';
import { flameGraphSvg } from '../../src/trace/svg-flame.js';
import { histogramSvg } from '../../src/trace/svg-histogram.js';
import { bootTimelineSvg } from '../../src/trace/svg-timeline.js';
import { sampleBoot, sampleHist, sampleStacks } from './fixtures.js';

const WIDTH = 1200;
const HEIGHT = 800;

interface BrowserRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let dir: string;
/** Process groups of every chromium started here (each runs in a group of its own). */
const groups = new Set<number>();

/** Run chromium headless on one file; the whole process group is gone when this resolves. */
function chromium(args: string[], timeoutMs = 60_000): Promise<BrowserRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--no-default-browser-check',
        '--hide-scrollbars',
        '--enable-logging=stderr',
        '--v=0',
        `--user-data-dir=${mkdtempSync(join(dir, 'profile-'))}`,
        `--window-size=${WIDTH},${HEIGHT}`,
        ...args,
      ],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (child.pid) groups.add(child.pid);
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is already gone
      }
    };
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => {
      stdout += b;
    });
    child.stderr.on('data', (b) => {
      stderr += b;
    });
    const timer = setTimeout(killGroup, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup(); // helpers (crashpad) that outlived the browser
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Lines of chromium's stderr about the page: console messages (uncaught exceptions
 * land there) and errors naming the file. D-Bus and GPU complaints of a headless
 * machine are not about the page.
 */
function pageErrors(stderr: string, file: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => /CONSOLE|Uncaught/.test(l) || (/:(ERROR|FATAL):/.test(l) && l.includes(file)));
}

/** Load the SVG as a document: it must parse, and its scripts must not report errors. */
async function dumpDom(file: string): Promise<string> {
  const r = await chromium(['--dump-dom', `file://${file}`]);
  assert.equal(r.code, 0, `chromium exited ${r.code ?? r.signal}:\n${r.stderr.slice(-2000)}`);
  assert.ok(r.stdout.includes('<svg'), `no SVG in the DOM:\n${r.stdout.slice(0, 500)}`);
  assert.ok(!r.stdout.includes('parsererror'), `the SVG does not parse:\n${r.stdout.slice(0, 1500)}`);
  assert.deepEqual(pageErrors(r.stderr, file), []);
  return r.stdout;
}

interface Pixels {
  png: PNG;
  at(x: number, y: number): [number, number, number];
  distinctColors: number;
  nonWhiteShare: number;
}

async function screenshot(file: string): Promise<Pixels> {
  const out = `${file}.png`;
  const r = await chromium([`--screenshot=${out}`, `file://${file}`]);
  assert.equal(r.code, 0, `chromium exited ${r.code ?? r.signal}:\n${r.stderr.slice(-2000)}`);
  assert.deepEqual(pageErrors(r.stderr, file), []);
  const png = PNG.sync.read(readFileSync(out));
  assert.equal(png.width, WIDTH);
  assert.equal(png.height, HEIGHT);
  const colors = new Set<number>();
  let nonWhite = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    const [r, g, b] = [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
    colors.add((r << 16) | (g << 8) | b);
    if (r < 245 || g < 245 || b < 245) nonWhite++;
  }
  return {
    png,
    at: (x, y) => {
      const i = (Math.round(y) * png.width + Math.round(x)) * 4;
      return [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
    },
    distinctColors: colors.size,
    nonWhiteShare: nonWhite / (png.width * png.height),
  };
}

/** The first `<rect>` inside the `<g>` whose attributes or text contain `marker`. */
function rectOf(svg: string, marker: string): { x: number; y: number; width: number; height: number } {
  const g = svg.split('\n').find((l) => l.startsWith('<g') && l.includes(marker));
  assert.ok(g, marker);
  const m = /<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/.exec(g)!;
  return { x: Number(m[1]), y: Number(m[2]), width: Number(m[3]), height: Number(m[4]) };
}

function write(name: string, svg: string): string {
  const file = join(dir, name);
  writeFileSync(file, svg);
  return file;
}

const warm = ([r, g, b]: [number, number, number]) => r >= 200 && b <= 80 && g < 235;

describe('SVGs in Chromium', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kjx-svg-render-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the check sees an SVG that does not parse (the detector itself works)', async () => {
    const file = write('broken.svg', '<svg xmlns="http://www.w3.org/2000/svg"><text>a & b</text></svg>');
    const r = await chromium(['--dump-dom', `file://${file}`]);
    assert.equal(r.code, 0);
    assert.ok(r.stdout.includes('parsererror'), r.stdout);
  });

  test('flame graph: parses, its script runs, warm frames where the layout put them', async () => {
    const svg = flameGraphSvg(sampleStacks(), {
      title: 'Off-CPU time <&>',
      subtitle: 'offcputime -f',
      countName: 'us',
    });
    const file = write('flame.svg', svg);
    const dom = await dumpDom(file);
    assert.match(dom, /<svg[^>]* data-ready="1"/, 'the flame graph script did not finish');
    const px = await screenshot(file);
    assert.ok(px.distinctColors > 200, `only ${px.distinctColors} colours`);
    assert.ok(px.nonWhiteShare > 0.3, `only ${(px.nonWhiteShare * 100).toFixed(1)}% non-white`);
    const root = rectOf(svg, 'data-n="all"');
    assert.ok(warm(px.at(root.x + root.width / 2, root.y + root.height / 2)), 'root frame is not warm');
    const sshd = rectOf(svg, 'data-n="sshd"');
    assert.ok(warm(px.at(sshd.x + sshd.width / 2, sshd.y + 3)));
  });

  test('flame graph: click zooms, Reset Zoom restores, search highlights and reports the share', async () => {
    const stacks = [
      { frames: ['sshd', 'main', 'read'], count: 30 },
      { frames: ['sshd', 'main', 'write'], count: 10 },
      { frames: ['runsv', 'poll'], count: 40 },
      { frames: ['runsv', 'read'], count: 20 },
    ];
    // a test harness appended after the graph's own script drives it like a user would
    const harness = `<script><![CDATA[
(function () {
  var out = {};
  var frame = function (n) { return document.querySelector('g.f[data-n="' + n + '"]'); };
  var width = function (n) { return Number(frame(n).querySelector('rect').getAttribute('width')); };
  frame('sshd').dispatchEvent(new MouseEvent('click'));
  out.zoomed = { sshd: width('sshd'), main: width('main'), runsvHidden: frame('runsv').classList.contains('hide'),
    allParent: frame('all').classList.contains('parent'), unzoom: !document.getElementById('unzoom').classList.contains('hide') };
  document.getElementById('unzoom').dispatchEvent(new MouseEvent('click'));
  out.reset = { sshd: width('sshd'), runsvHidden: frame('runsv').classList.contains('hide') };
  frame('poll').dispatchEvent(new MouseEvent('mouseover'));
  out.details = document.getElementById('details').textContent;
  window.prompt = function () { return '^read$'; };
  document.getElementById('search').dispatchEvent(new MouseEvent('click'));
  out.matched = document.getElementById('matched').textContent;
  out.fill = document.querySelectorAll('g.f[data-n="read"] rect')[0].getAttribute('fill');
  out.button = document.getElementById('search').textContent;
  var t = document.createElementNS('http://www.w3.org/2000/svg', 'text');
  t.setAttribute('id', 'harness');
  t.textContent = JSON.stringify(out);
  document.documentElement.appendChild(t);
})();
]]></script>`;
    const svg = flameGraphSvg(stacks, { title: 'zoom', width: 1020 }).replace(
      '</svg>',
      () => `${harness}\n</svg>`,
    );
    const dom = await dumpDom(write('flame-zoom.svg', svg));
    const json = /<text id="harness">(.*?)<\/text>/.exec(dom)?.[1];
    assert.ok(json, dom.slice(-1500));
    const out = JSON.parse(json.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
    assert.deepEqual(out, {
      zoomed: { sshd: 1000, main: 1000, runsvHidden: true, allParent: true, unzoom: true },
      reset: { sshd: 400, runsvHidden: false },
      details: 'Function: poll (40 samples, 40.00%)',
      matched: 'Matched: 50.00%',
      fill: 'rgb(230,0,230)',
      button: 'Reset Search',
    });
  });

  test('histogram: parses, orange bars as long as their counts, labels drawn', async () => {
    const h = sampleHist();
    const svg = histogramSvg(h, { title: 'run queue latency' });
    const file = write('hist.svg', svg);
    await dumpDom(file);
    const px = await screenshot(file);
    assert.ok(px.distinctColors > 20, `only ${px.distinctColors} colours`);
    assert.ok(px.nonWhiteShare > 0.02, `only ${(px.nonWhiteShare * 100).toFixed(1)}% non-white`);
    const big = rectOf(svg, '32 -&gt; 63');
    const [r, g, b] = px.at(big.x + big.width - 3, big.y + big.height / 2);
    assert.ok(r > 200 && g > 80 && g < 160 && b < 80, `bar colour ${[r, g, b]}`);
    // right of the longest bar, past its count text, is background
    assert.deepEqual(px.at(big.x + big.width + 80, big.y + big.height / 2), [255, 255, 255]);
    // label text is drawn left of the bars: dark pixels there
    let dark = 0;
    for (let x = 20; x < big.x - 10; x++) if (px.at(x, big.y + big.height / 2 + 1)[0] < 128) dark++;
    assert.ok(dark > 5, 'no label text next to the bar');
  });

  test('boot timeline: parses, phase and service bars in their colours', async () => {
    const { phases, services } = sampleBoot();
    const svg = bootTimelineSvg(bootTimeline(phases, services), { title: 'kjx boot', subtitle: 'tcg' });
    const file = write('timeline.svg', svg);
    await dumpDom(file);
    const px = await screenshot(file);
    assert.ok(px.distinctColors > 20, `only ${px.distinctColors} colours`);
    assert.ok(px.nonWhiteShare > 0.03, `only ${(px.nonWhiteShare * 100).toFixed(1)}% non-white`);
    const kernel = rectOf(svg, 'kernel: ');
    assert.deepEqual(px.at(kernel.x + kernel.width / 2, kernel.y + kernel.height / 2), [110, 150, 220]);
    const ssh = svg.split('\n').find((l) => l.includes('ssh ready'))!;
    const rects = [...ssh.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/g)];
    const ready = rects[1]!.slice(1).map(Number) as [number, number, number, number];
    assert.deepEqual(px.at(ready[0] + ready[2] / 2, ready[1] + ready[3] / 2), [215, 80, 60]);
  });

  test('no browser process is left running in any process group started here', () => {
    assert.ok(groups.size >= 8, `${groups.size} browser runs`);
    const left = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
          // fields after "(comm)": state, ppid, pgrp
          const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          return state !== 'Z' && groups.has(Number(pgrp));
        } catch {
          return false;
        }
      });
    assert.deepEqual(left, []);
  });
});
