/**
 * Container runtimes side by side (`npm run bench runtimes`): one image per
 * runtime component (busybox, runit, dropbear and the runtime; zstd), each built
 * and booted once under `kjx test` with the runtime's own smoke check. Per runtime:
 *
 * - image size: the compressed initramfs;
 * - boot: QEMU start to the `ready` marker (every service ready, daemons included);
 * - daemon ready: the daemon's service from `up` to `ready` (guest clock);
 * - container run: the `run` of the check container alone (guest clock), what
 *   the check prints as `container run t0= t1=`;
 * - check: the whole check, its preparation (the image import, which the run hook
 *   runs before ready: docs/containers.md) included.
 *
 * Under TCG on a shared machine: one run each, reported, never asserted.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchLine } from './build.bench.js';

const ROOT = join(import.meta.dirname, '..');
const KJX = join(ROOT, 'bin', 'kjx.js');
const env = { ...process.env, CI: '1', KJX_CACHE_DIR: join(ROOT, '.kjx', 'test-cache') };

/** runtime component -> its daemon's service, if it has one */
const RUNTIMES: [string, string | undefined][] = [
  ['runc', undefined],
  ['crun', undefined],
  ['gvisor', undefined],
  ['containerd', 'containerd'],
  ['podman', undefined],
  ['docker', 'docker'],
];

interface Row {
  runtime: string;
  imageMB: number;
  bootS: number;
  daemonS?: number;
  runS?: number;
  checkS?: number;
  pass: boolean;
}

function measure(runtime: string, daemon: string | undefined, state: string): Row {
  const ws = mkdtempSync(join(tmpdir(), `kjx-bench-${runtime}-`));
  try {
    writeFileSync(
      join(ws, 'kjx.yaml'),
      `name: bench-${runtime}\ncompression: zstd\ncomponents: [busybox, runit, dropbear, ${runtime}]\n`,
    );
    execFileSync(process.execPath, [KJX, 'build'], { cwd: ws, env, stdio: 'ignore' });
    const r = spawnSync(process.execPath, [KJX, 'test', '--json', '--accel', 'tcg', runtime], {
      cwd: ws,
      env: { ...env, KJX_STATE_DIR: state },
      encoding: 'utf8',
    });
    const res = JSON.parse(r.stdout) as {
      phases: { ready?: number };
      services: { name: string; state: string; uptime: number }[];
      checks: { name: string; pass: boolean; seconds?: number; output: string[] }[];
    };
    const check = res.checks[0]!;
    const at = (state: string) => res.services.find((s) => s.name === daemon && s.state === state)?.uptime;
    const up = at('up');
    const ready = at('ready');
    const span = (re: RegExp) => {
      const m = check.output.map((l) => re.exec(l)).find((x) => x !== null);
      return m ? Number(m[2]) - Number(m[1]) : undefined;
    };
    const runS = span(/container run t0=([0-9.]+) t1=([0-9.]+)/);
    const prepS = span(/^kjx-test: prepared before ready \(t0=([0-9.]+) t1=([0-9.]+)\)/) ?? 0;
    return {
      runtime,
      imageMB: statSync(join(ws, 'dist', 'initramfs.cpio.zst')).size / 1e6,
      bootS: res.phases.ready ?? Number.NaN,
      ...(up !== undefined && ready !== undefined ? { daemonS: ready - up } : {}),
      ...(runS !== undefined ? { runS } : {}),
      ...(check.seconds !== undefined ? { checkS: check.seconds + prepS } : {}),
      pass: check.pass,
    };
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

/** The side-by-side table, one row per runtime. */
export function runtimeTable(rows: Row[]): string {
  const f = (n: number | undefined, d = 2) => (n === undefined ? '-' : n.toFixed(d));
  const head = ['runtime', 'image MB', 'boot s', 'daemon ready s', 'container run s', 'check s', 'check'];
  const body = rows.map((r) => [
    r.runtime,
    f(r.imageMB, 1),
    f(r.bootS),
    f(r.daemonS),
    f(r.runS),
    f(r.checkS),
    r.pass ? 'pass' : 'FAIL',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

export async function benchRuntimes(): Promise<BenchLine[]> {
  const state = mkdtempSync(join(tmpdir(), 'kjx-bench-state-'));
  const rows: Row[] = [];
  try {
    for (const [runtime, daemon] of RUNTIMES) {
      console.error(`bench: runtimes: ${runtime}`);
      rows.push(measure(runtime, daemon, state));
    }
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
  console.log(runtimeTable(rows));
  return rows.flatMap((r) => {
    const note = r.pass ? undefined : 'the check failed';
    const line = (what: string, value: number | undefined, unit: string): BenchLine[] =>
      value === undefined ? [] : [{ name: `${r.runtime}: ${what}`, value, unit, ...(note ? { note } : {}) }];
    return [
      ...line('image (zstd initramfs)', r.imageMB, 'MB'),
      ...line('boot to ready', r.bootS, 's'),
      ...line('daemon up to ready', r.daemonS, 's'),
      ...line('container run', r.runS, 's'),
      ...line('whole check (image load included)', r.checkS, 's'),
    ];
  });
}
