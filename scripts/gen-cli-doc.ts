/**
 * Writes docs/cli.md from the CLI's commands, options and exit statuses
 * (`npm run docs:cli`). test/cli/cli-doc.test.ts fails when the committed file is
 * out of date, so rerun this after changing a command, an option or exit-codes.ts.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCliDoc } from '../src/cli/cli-doc.js';
import { makeProgram } from '../src/cli/main.js';
import { writeFileAtomic } from '../src/util/atomic.js';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'cli.md');
writeFileAtomic(out, renderCliDoc(makeProgram()));
console.log(`wrote ${out}`);
