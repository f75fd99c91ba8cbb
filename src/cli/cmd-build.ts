/** `kjx build [-f kjx.yaml] [-o dist] [--json] [--update-lock] [--snapshot [--accel A]]` */
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import type { BuildResult } from '../pipeline/build.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import type { Prepared } from '../vm/prepare.js';
import { buildWarn } from './build-warnings.js';
import type { GlobalOptions } from './main.js';
import { createProgress, progressMode } from './progress.js';
import { humanBytes, tableLines } from './table.js';

export function artifactTable(r: BuildResult): string {
  const rows = r.artifacts.map((a) => [a.path, humanBytes(a.size), a.sha256]);
  const verb = r.noop ? 'up to date' : 'built';
  return [
    ...tableLines([['artifact', 'size', 'sha256'], ...rows]),
    '',
    `${verb}: build ${r.buildId}, kernel ${r.kernelVersion}, in ${(r.ms / 1000).toFixed(2)} s`,
  ].join('\n');
}

export function registerBuild(program: Command, globals: () => GlobalOptions): void {
  program
    .command('build')
    .description('build the image described by kjx.yaml (kernel + initramfs, manifest)')
    .option('-f, --file <path>', 'spec file', 'kjx.yaml')
    .option('-o, --out <dir>', 'output directory', 'dist')
    .option('--json', 'print the result as JSON on stdout (no progress display)')
    .option('--update-lock', 'resolve packages again and rewrite kjx.lock')
    .option(
      '--snapshot',
      'also save a snapshot of the VM at ready, for kjx run, test and trace to start from',
    )
    .option('--accel <accel>', 'with --snapshot: the accelerator it is for (auto, kvm or tcg)', 'auto')
    .action(async (o: BuildFlags) => {
      const { build, STAGES } = await import('../pipeline/build.js');
      const progress = await createProgress(progressMode(!!o.json), STAGES);
      let result: BuildResult;
      try {
        result = await build({
          specPath: o.file,
          outDir: o.out,
          updateLock: !!o.updateLock,
          events: progress.events,
          warn: buildWarn(globals().strict),
        });
      } catch (e) {
        await progress.finish(e);
        throw e;
      }
      await progress.finish();
      // the plan is for callers in the library; the JSON result stays what it was
      const { plan: _plan, ...printed } = result;
      const ahead = o.snapshot ? await snapshotAhead(o, buildWarn(globals().strict)) : undefined;
      if (o.json)
        process.stdout.write(
          `${JSON.stringify(
            {
              ...printed,
              ...(ahead ? { snapshot: ahead.run } : {}),
              ...(ahead?.test ? { testSnapshot: ahead.test } : {}),
            },
            null,
            2,
          )}\n`,
        );
      else {
        process.stdout.write(`${artifactTable(result)}\n`);
        const line = (label: string, s: SnapshotAhead) =>
          s.saved
            ? `${label}: saved ${s.key.slice(0, 12)} (${humanBytes(s.saved.bytes)}) in ${s.saved.seconds.toFixed(2)} s\n`
            : `${label}: ${s.key.slice(0, 12)} up to date\n`;
        if (ahead) process.stdout.write(line('snapshot', ahead.run));
        if (ahead?.test)
          process.stdout.write(
            line(`snapshot for kjx test (prepared: ${ahead.test.prepared.join(', ')})`, ahead.test),
          );
      }
    });
}

interface BuildFlags {
  file: string;
  out: string;
  json?: boolean;
  updateLock?: boolean;
  snapshot?: boolean;
  accel: string;
}

/** One snapshot `kjx build --snapshot` made sure of. */
interface SnapshotAhead {
  key: string;
  saved?: { bytes: number; seconds: number };
}

/**
 * The snapshots the first runs would save, saved now: the one `kjx run` and `kjx
 * trace` restore, and, when the image's checks have preparations (a check image to
 * load), the one `kjx test` restores, taken after them (src/guest/checks.ts). Each is
 * an ephemeral run of `true` that restores its snapshot when it is there (and so
 * checks it) or boots and saves.
 */
async function snapshotAhead(
  o: BuildFlags,
  warn: WarnFn,
): Promise<{ run: SnapshotAhead; test?: SnapshotAhead & { prepared: string[] } }> {
  const { accelFlag } = await import('./vm-options.js');
  const { prepareBoot } = await import('../vm/prepare.js');
  const { preparationsFor } = await import('../guest/checks.js');
  const p = await prepareBoot({ specPath: o.file, outDir: o.out, warn, accel: accelFlag(o.accel) });
  const run = await saveAhead(p, [], warn);
  // the one `kjx test` looks up: the same preparations, so the same key
  const prepared = preparationsFor(p.image.manifest.files, [], true);
  if (prepared.length === 0) return { run };
  return { run, test: { ...(await saveAhead(p, prepared, warn)), prepared } };
}

async function saveAhead(p: Prepared, prepare: string[], warn: WarnFn): Promise<SnapshotAhead> {
  const { launch } = await import('../vm/launch.js');
  const guest = await launch(p, { snapshots: { restore: true, save: true, warn }, prepare });
  const sink = new PassThrough().resume();
  const r = await guest.run({ argv: ['true'] }, { stdout: sink, stderr: sink, timeoutS: 900, silenceS: 300 });
  const which = prepare.length > 0 ? ' (for kjx test, its checks prepared)' : '';
  if (r.outcome !== 'exited' || r.status !== 0 || !r.start?.key)
    throw new KjxError(
      'VM_START',
      `--snapshot${which}: the VM did not reach ready and run \`true\` (${r.message ?? r.outcome})`,
      {
        hint: `see ${guest.stateDir}/console.log`,
      },
    );
  if (r.start.how === 'booted' && !r.start.saved)
    throw new KjxError(
      'VM_START',
      `--snapshot${which}: the VM booted but was not saved (see the warning above)`,
    );
  return { key: r.start.key, ...(r.start.saved ? { saved: r.start.saved } : {}) };
}
