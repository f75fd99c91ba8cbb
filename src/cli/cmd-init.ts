/** `kjx init [-f kjx.yaml] [--force]`: write the commented default spec. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_SPEC_YAML } from '../spec/default-spec.js';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('write a commented default kjx.yaml (busybox + runit + dropbear + virtio modules)')
    .option('-f, --file <path>', 'where to write it', 'kjx.yaml')
    .option('--force', 'overwrite an existing file')
    .action((o: { file: string; force?: boolean }) => {
      if (existsSync(o.file) && !o.force) {
        throw new KjxError('USAGE', `${o.file} already exists`, { hint: 'pass --force to overwrite it' });
      }
      writeFileAtomic(o.file, DEFAULT_SPEC_YAML);
      console.log(`wrote ${o.file}; next: kjx build`);
    });
}
