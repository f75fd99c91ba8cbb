/**
 * Guest lifecycle benchmarks (`npm run bench guest`): the timing targets that the
 * integration tests only bound loosely (a loaded 2-core host must not fail them),
 * measured here on detached VMs of the tracer-then-workload example under TCG:
 *
 * - killing the tracer stops the workload (`needs:`), in guest seconds: <= 2 s;
 * - `poweroff` in the guest to QEMU's exit: <= 10 s;
 * - `kjx stop` (ACPI power button, runit stage 3) to a clean power-off: <= 10 s.
 *
 * Medians of several boots; targets are reported, never asserted.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BenchLine, median } from './build.bench.js';

const ROOT = join(import.meta.dirname, '..');
const KJX = join(ROOT, 'bin', 'kjx.js');
const RUNS = 3;

/** What the handshake test runs in the guest: kill the tracer, time the workload's end in uptime. */
const KILL_TRACER = [
  'read tp </run/kjx/svc/tracer/child',
  'read wp </run/kjx/svc/workload/pid',
  'read t0 _ </proc/uptime',
  'kill -9 "$tp"',
  'n=0; while kill -0 "$wp" 2>/dev/null && [ $n -lt 600 ]; do usleep 50000; n=$((n + 1)); done',
  'read t1 _ </proc/uptime',
  'echo "$t0 $t1"',
].join('\n');

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export async function benchGuest(): Promise<BenchLine[]> {
  const ws = mkdtempSync(join(tmpdir(), 'kjx-bench-guest-'));
  const state = mkdtempSync(join(tmpdir(), 'kjx-bench-state-'));
  const env = {
    ...process.env,
    CI: '1',
    KJX_CACHE_DIR: join(ROOT, '.kjx', 'test-cache'),
    KJX_STATE_DIR: state,
  };
  const kjx = (args: string[]) => {
    const r = spawnSync(process.execPath, [KJX, ...args], { cwd: ws, env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`kjx ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
    return r.stdout;
  };
  const boot = (name: string): number =>
    JSON.parse(kjx(['boot', '--detach', '--name', name, '--accel', 'tcg', '--json'])).pid;
  try {
    cpSync(join(ROOT, 'examples', 'tracer-then-workload.yaml'), join(ws, 'kjx.yaml'));
    execFileSync(process.execPath, [KJX, 'build'], { cwd: ws, env, stdio: 'ignore' });
    const handshake: number[] = [];
    const poweroff: number[] = [];
    const stop: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const pid = boot(`bench-poweroff-${i}`);
      const [t0, t1] = kjx(['exec', `bench-poweroff-${i}`, '--', 'sh', '-c', KILL_TRACER])
        .trim()
        .split(' ')
        .map(Number);
      handshake.push(t1! - t0!);
      const t = performance.now();
      // the SSH session ends with the guest: its status says nothing
      spawnSync(process.execPath, [KJX, 'exec', `bench-poweroff-${i}`, '--', 'poweroff'], { cwd: ws, env });
      while (alive(pid) && performance.now() - t < 300_000) await new Promise((r) => setTimeout(r, 50));
      poweroff.push((performance.now() - t) / 1000);
      // the record of a VM that ended by itself is swept by stop
      spawnSync(process.execPath, [KJX, 'stop', `bench-poweroff-${i}`, '--timeout', '1'], { cwd: ws, env });

      boot(`bench-stop-${i}`);
      const s = performance.now();
      const out = kjx(['stop', `bench-stop-${i}`, '--timeout', '300']);
      stop.push((performance.now() - s) / 1000);
      if (!/stopped \(powerdown\)/.test(out)) throw new Error(`kjx stop did not power off cleanly: ${out}`);
    }
    return [
      {
        name: 'tracer killed → workload stopped (guest uptime)',
        value: median(handshake),
        unit: 's',
        target: '<= 2 s',
        ok: median(handshake) <= 2,
        runs: handshake,
      },
      {
        name: 'poweroff in the guest → QEMU exit',
        value: median(poweroff),
        unit: 's',
        target: '<= 10 s',
        ok: median(poweroff) <= 10,
        runs: poweroff,
      },
      {
        name: 'kjx stop (ACPI power-off, runit stage 3)',
        value: median(stop),
        unit: 's',
        target: '<= 10 s',
        ok: median(stop) <= 10,
        runs: stop,
      },
    ];
  } finally {
    spawnSync(process.execPath, [KJX, 'stop', '--all', '--timeout', '1'], { cwd: ws, env });
    rmSync(ws, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  }
}
