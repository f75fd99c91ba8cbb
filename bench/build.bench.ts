/**
 * Build benchmarks (`npm run bench`): cold build with .debs cached, warm no-op,
 * incremental after editing one file, our cpio+gzip packer against GNU
 * `find | cpio -o -H newc | gzip` on the same tree in the same run, writeCpio alone
 * on a 15 MB tree (test/image/cpio.test.ts only bounds it loosely), and the size of
 * the default initramfs. Medians of several runs; targets are checked as ratios or
 * limits and reported, never asserted (machines are shared and noisy).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { cpioToTree, readCpio, writeCpio } from '../src/image/cpio.js';
import { makeReproducible } from '../src/rootfs/reproducible.js';
import { mk, newTree } from '../src/rootfs/tree.js';
import { compress } from '../src/util/compression.js';

export interface BenchLine {
  name: string;
  value: number;
  unit: string;
  target?: string;
  ok?: boolean;
  runs?: number[];
  note?: string;
}

const ROOT = join(import.meta.dirname, '..');
const KJX = join(ROOT, 'bin', 'kjx.js');
const SHARED_CACHE = join(ROOT, '.kjx', 'test-cache');

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function kjx(args: string[], cwd: string, cache: string): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, [KJX, ...args], {
    cwd,
    env: { ...process.env, CI: '1', KJX_CACHE_DIR: cache },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`kjx ${args.join(' ')} failed:\n${r.stderr}`);
  return (performance.now() - t) / 1000;
}

function coldCache(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-bench-cache-'));
  mkdirSync(join(dir, 'debs'));
  for (const f of readdirSync(join(SHARED_CACHE, 'debs')))
    cpSync(join(SHARED_CACHE, 'debs', f), join(dir, 'debs', f));
  return dir;
}

export async function benchBuild(): Promise<BenchLine[]> {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-bench-'));
  const lines: BenchLine[] = [];
  try {
    execFileSync(process.execPath, [KJX, 'init'], { cwd: ws });
    writeFileSync(join(ws, 'motd.txt'), 'hello 0\n');
    const spec = readFileSync(join(ws, 'kjx.yaml'), 'utf8').replace(
      /^files: \[\]$/m,
      'files:\n  - path: /etc/motd\n    from: ./motd.txt\n',
    );
    writeFileSync(join(ws, 'kjx.yaml'), spec);
    // resolve + download once into the shared cache; not measured
    kjx(['build', '-o', 'warmup'], ws, SHARED_CACHE);

    const cold: number[] = [];
    for (let i = 0; i < 3; i++) {
      const cache = coldCache();
      cold.push(kjx(['build', '-o', `cold${i}`], ws, cache));
      rmSync(cache, { recursive: true, force: true });
    }
    lines.push({
      name: 'cold build, .debs cached',
      value: median(cold),
      unit: 's',
      target: '<= 10 s',
      ok: median(cold) <= 10,
      runs: cold,
    });

    const cache = coldCache();
    kjx(['build'], ws, cache);
    const noop: number[] = [];
    for (let i = 0; i < 5; i++) noop.push(kjx(['build'], ws, cache));
    lines.push({
      name: 'warm no-op build',
      value: median(noop),
      unit: 's',
      target: '<= 0.5 s',
      ok: median(noop) <= 0.5,
      runs: noop,
    });

    const inc: number[] = [];
    for (let i = 1; i <= 3; i++) {
      writeFileSync(join(ws, 'motd.txt'), `hello ${i}\n`);
      inc.push(kjx(['build'], ws, cache));
    }
    lines.push({
      name: 'incremental build after editing one file',
      value: median(inc),
      unit: 's',
      target: '<= 2 s',
      ok: median(inc) <= 2,
      runs: inc,
    });
    rmSync(cache, { recursive: true, force: true });

    const initrd = join(ws, 'dist', 'initramfs.cpio.gz');
    const size = statSync(initrd).size;
    lines.push({
      name: 'default initramfs size (gzip)',
      value: size / 1e6,
      unit: 'MB',
      target: '<= 3 MB',
      ok: size <= 3e6,
    });

    // the packer: the same tree, ours in-process vs GNU cpio + gzip from a directory
    const cpio = gunzipSync(readFileSync(initrd));
    const tree = cpioToTree(readCpio(cpio, 'initramfs'));
    const dir = join(ws, 'unpacked');
    mkdirSync(dir);
    execFileSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { cwd: dir, input: cpio });
    const ours: number[] = [];
    const gnu: number[] = [];
    for (let i = 0; i < 5; i++) {
      let t = performance.now();
      await compress(writeCpio(makeReproducible(tree, 1704067200)), 'gzip');
      ours.push((performance.now() - t) / 1000);
      t = performance.now();
      execFileSync('sh', ['-c', 'find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -6 > /dev/null'], {
        cwd: dir,
      });
      gnu.push((performance.now() - t) / 1000);
    }
    const ratio = median(ours) / median(gnu);
    lines.push({ name: 'our cpio+gzip packing', value: median(ours), unit: 's', runs: ours });
    lines.push({
      name: 'GNU find | cpio -o -H newc | gzip, same tree',
      value: median(gnu),
      unit: 's',
      runs: gnu,
    });
    lines.push({
      name: 'packer ratio (ours / GNU)',
      value: ratio,
      unit: 'x',
      target: '<= 1.0',
      ok: ratio <= 1,
      note: `${tree.size} entries, ${(cpio.length / 1e6).toFixed(2)} MB uncompressed`,
    });
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
  lines.push(writeCpioLine());
  return lines;
}

/** writeCpio alone (no compression) on 1000 entries, 15 MB: median of 5 after a warm-up. */
function writeCpioLine(): BenchLine {
  const src = { kind: 'generated', by: 'bench' } as const;
  const tree = newTree();
  for (let d = 0; d < 20; d++) {
    tree.set(`/d${d}`, mk.dir(`/d${d}`, src));
    for (let f = 0; f < 49; f++)
      tree.set(`/d${d}/f${f}`, mk.file(`/d${d}/f${f}`, randomBytes(15_300 + f), src));
  }
  writeCpio(makeReproducible(tree, 1704067200)); // warm up the JIT
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    writeCpio(makeReproducible(tree, 1704067200));
    runs.push((performance.now() - t) / 1000);
  }
  return {
    name: 'writeCpio, 1000 entries / 15 MB',
    value: median(runs),
    unit: 's',
    target: '< 0.1 s',
    ok: median(runs) < 0.1,
    runs,
  };
}
