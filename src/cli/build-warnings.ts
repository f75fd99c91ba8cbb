/**
 * What the CLI does with the warnings a build reports (STYLE habit 7): print each
 * on stderr, or, under `--strict`, stop the build at the first one with a
 * STRICT_WARNING error, whose exit status docs/cli.md documents.
 */
import { KjxError, type WarnFn, type Warning } from '../util/errors.js';

/** The `warn` every command that builds hands to the build. */
export function buildWarn(strict: boolean): WarnFn {
  return (w) => {
    if (strict) throw strictWarning(w);
    console.error(`kjx: warning: ${w.message} [${w.code}]`);
  };
}

/** A warning as the error `--strict` makes of it. */
export function strictWarning(w: Warning): KjxError {
  return new KjxError('STRICT_WARNING', `${w.message} [${w.code}] (a warning; --strict makes it an error)`, {
    hint: 'fix what it says, or build without --strict to go on with the warning',
    reason: w.code,
  });
}
