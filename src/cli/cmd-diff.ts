/**
 * `kjx diff A B [--json]`: files added, removed and changed (type, content,
 * mode, owner, link target, device) between two artifacts of any format kjx
 * reads, two manifests, or two build directories. Like diff(1), the exit status
 * is 0 when they are the same and 1 when they differ.
 *
 * Files that differ only by the build id inside them (/etc/os-release, ...) are
 * counted apart when both sides carry contents: the build id changes whenever
 * any input does, so listing them would hide the change that matters.
 */
import type { Command } from 'commander';
import type { LoadedArtifact } from '../image/read-artifact.js';
import {
  type DiffEntry,
  describeChange,
  diffFacts,
  type FactsIndex,
  factsFromManifest,
  factsFromTree,
  octalMode,
} from '../image/tree-diff.js';
import { printable } from '../util/printable.js';
import { loadOptions, MAX_MEMORY_HELP } from './cmd-inspect.js';
import { EXIT } from './exit-codes.js';

function facts(a: LoadedArtifact): FactsIndex {
  return a.tree ? factsFromTree(a.tree) : factsFromManifest(a.manifestFiles ?? []);
}

/** Does `path` hold the same bytes on both sides once A's build id is replaced by B's? */
function buildIdOnly(a: LoadedArtifact, b: LoadedArtifact): ((path: string) => boolean) | undefined {
  if (!a.tree || !b.tree || !a.buildId || !b.buildId || a.buildId === b.buildId) return undefined;
  const from = a.buildId;
  const to = b.buildId;
  return (path) => {
    const ea = a.tree!.get(path);
    const eb = b.tree!.get(path);
    if (ea?.type !== 'file' || eb?.type !== 'file') return false;
    const sa = ea.data.toString('latin1');
    return sa.includes(from) && sa.split(from).join(to) === eb.data.toString('latin1');
  };
}

/** One line per entry; paths and link targets come from the images, so they are printed escaped. */
function line(e: DiffEntry): string {
  const path = printable(e.path);
  if (e.kind === 'added') return `+ ${path}  (${e.b!.type} ${octalMode(e.b!.mode)} ${e.b!.uid}:${e.b!.gid})`;
  if (e.kind === 'removed')
    return `- ${path}  (${e.a!.type} ${octalMode(e.a!.mode)} ${e.a!.uid}:${e.a!.gid})`;
  return `~ ${path}  ${e.changes.map((c) => printable(describeChange(c, e.a!, e.b!))).join(', ')}`;
}

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('show the files added, removed and changed between two artifacts, manifests or builds')
    .argument('<a>', 'artifact, manifest.json or build directory')
    .argument('<b>', 'artifact, manifest.json or build directory')
    .option('--json', 'print JSON')
    .option('--max-memory <size>', MAX_MEMORY_HELP)
    .action(async (pa: string, pb: string, o: { json?: boolean; maxMemory?: string }) => {
      // read-artifact pulls in the decompressors: load it only when the command runs
      const { loadArtifact } = await import('../image/read-artifact.js');
      const a = await loadArtifact(pa, loadOptions(o.maxMemory));
      const b = await loadArtifact(pb, loadOptions(o.maxMemory));
      // lost+found is ext4's, not the image's: leave it out unless both sides have one
      const ignore = (p: string) => p === '/lost+found' && a.format !== b.format;
      const same = buildIdOnly(a, b);
      const r = diffFacts(facts(a), facts(b), { ignore, ...(same ? { sameButBuildId: same } : {}) });
      const count = (k: DiffEntry['kind']) => r.entries.filter((e) => e.kind === k).length;
      if (o.json) {
        const side = (x: LoadedArtifact) => ({ path: x.path, format: x.format, buildId: x.buildId });
        process.stdout.write(
          `${JSON.stringify(
            {
              a: side(a),
              b: side(b),
              added: r.entries.filter((e) => e.kind === 'added').map((e) => e.path),
              removed: r.entries.filter((e) => e.kind === 'removed').map((e) => e.path),
              changed: r.entries
                .filter((e) => e.kind === 'changed')
                .map((e) => ({ path: e.path, changes: e.changes })),
              buildIdOnly: r.buildIdOnly,
            },
            null,
            2,
          )}\n`,
        );
      } else {
        for (const e of r.entries) process.stdout.write(`${line(e)}\n`);
        const also =
          r.buildIdOnly.length > 0
            ? `; ${r.buildIdOnly.length} more differ only by the build id (${printable(a.buildId ?? '')} -> ${printable(b.buildId ?? '')}): ${r.buildIdOnly.map(printable).join(', ')}`
            : '';
        process.stdout.write(
          `${count('added')} added, ${count('removed')} removed, ${count('changed')} changed${also}\n`,
        );
      }
      process.exitCode = r.entries.length > 0 ? EXIT.failed : EXIT.ok;
    });
}
