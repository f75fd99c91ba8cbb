/** Turn any thrown value into what the user sees: one line plus hint for known errors, a stack for unknown ones. */
import { isKjxError } from '../util/errors.js';
import { printableMessage } from '../util/printable.js';
import { EXIT, exitCodeFor } from './exit-codes.js';

export function reportError(e: unknown, debug: boolean): number {
  if (isKjxError(e)) {
    // messages may quote names from images and guests: no control character reaches the terminal raw
    console.error(`kjx: error: ${printableMessage(e.message)}`);
    for (const d of e.details) if (!e.message.includes(d)) console.error(`  ${printableMessage(d)}`);
    if (e.hint) console.error(`  hint: ${printableMessage(e.hint)}`);
    if (debug && e.stack) console.error(e.stack);
    return exitCodeFor(e.code);
  }
  console.error(`kjx: internal error: ${e instanceof Error ? (debug ? e.stack : e.message) : String(e)}`);
  if (!debug) console.error('  hint: run again with --debug for the stack trace, and report it');
  return EXIT.internal;
}
