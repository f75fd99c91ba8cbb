/** The process entry of `kjx`: signals, then `main`. Kept apart so tests can import main.ts without running it. */
import { EXIT } from './exit-codes.js';
import { main } from './main.js';

const onSignal = (sig: NodeJS.Signals, code: number) => () => {
  process.stderr.write(`\nkjx: interrupted (${sig}); artifacts and cache are left as they were\n`);
  process.exit(code);
};
process.once('SIGINT', onSignal('SIGINT', EXIT.sigint));
process.once('SIGTERM', onSignal('SIGTERM', EXIT.sigterm));
// `kjx inspect IMAGE | head`: a reader that stops early is not an error
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(EXIT.ok);
  throw e;
});

process.exitCode = await main(process.argv);
