/** The process entry of `kjx`: signals, then `main`. Kept apart so tests can import main.ts without running it. */
import { EXIT } from './exit-codes.js';
import { main } from './main.js';

const onSignal = (sig: NodeJS.Signals, code: number) => () => {
  process.stderr.write(`\nkjx: interrupted (${sig}); artifacts and cache are left as they were\n`);
  process.exit(code);
};
process.once('SIGINT', onSignal('SIGINT', EXIT.sigint));
process.once('SIGTERM', onSignal('SIGTERM', EXIT.sigterm));

process.exitCode = await main(process.argv);
