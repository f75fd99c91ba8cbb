/** `kjx build [-f kjx.yaml] [-o dist] [--json] [--update-lock]` */
import type { Command } from 'commander';
import type { BuildResult } from '../pipeline/build.js';
import { buildWarn } from './build-warnings.js';
import type { GlobalOptions } from './main.js';
import { createProgress, progressMode } from './progress.js';

function human(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export function artifactTable(r: BuildResult): string {
  const rows = r.artifacts.map((a) => [a.path, human(a.size), a.sha256]);
  const head = ['artifact', 'size', 'sha256'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cols: string[]) =>
    cols
      .map((c, i) => c.padEnd(w[i]!))
      .join('  ')
      .trimEnd();
  const verb = r.noop ? 'up to date' : 'built';
  return [
    line(head),
    ...rows.map(line),
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
    .action(async (o: { file: string; out: string; json?: boolean; updateLock?: boolean }) => {
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
      if (o.json) process.stdout.write(`${JSON.stringify(printed, null, 2)}\n`);
      else process.stdout.write(`${artifactTable(result)}\n`);
    });
}
