/**
 * docs/cli.md and the code agree: the committed file is what the CLI generates,
 * and its exit-status table, read back as a user reads it, gives every error code
 * the status the CLI exits with. A warning under --strict is one of those codes,
 * not an internal error.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { strictWarning } from '../../src/cli/build-warnings.js';
import { renderCliDoc } from '../../src/cli/cli-doc.js';
import { EXIT, EXIT_FOR_CODE, exitCodeFor } from '../../src/cli/exit-codes.js';
import { makeProgram } from '../../src/cli/main.js';
import { reportError } from '../../src/cli/report-error.js';
import type { ErrorCode } from '../../src/util/errors.js';

const doc = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');

/** The exit-status table of docs/cli.md: status -> error codes. */
function docTable(): Map<number, string[]> {
  const section = doc.slice(doc.indexOf('## Exit statuses'));
  const rows = new Map<number, string[]>();
  for (const line of section.split('\n')) {
    const m = /^\| (\d+) \| .* \| ([^|]*) \|$/.exec(line);
    if (!m) continue;
    assert.ok(!rows.has(Number(m[1])), `status ${m[1]} twice`);
    rows.set(
      Number(m[1]),
      [...m[2]!.matchAll(/`([A-Z_]+)`/g)].map((c) => c[1]!),
    );
  }
  return rows;
}

describe('docs/cli.md', () => {
  test('is what the CLI generates (regenerate with `npm run docs:cli`)', () => {
    assert.equal(doc, renderCliDoc(makeProgram()));
  });

  test('lists every command kjx has, and every subcommand (kjx cluster up) under its command', () => {
    for (const c of makeProgram().commands) {
      assert.match(doc, new RegExp(`^### kjx ${c.name()}$`, 'm'));
      for (const sub of c.commands)
        assert.match(doc, new RegExp(`^#### kjx ${c.name()} ${sub.name()}$`, 'm'));
    }
    assert.match(doc, /^#### kjx cluster up$/m);
  });

  test('its exit-status table has every status once, and every error code under the status kjx exits with', () => {
    const rows = docTable();
    assert.deepEqual(
      [...rows.keys()].sort((a, b) => a - b),
      [...new Set(Object.values(EXIT))].sort((a, b) => a - b),
    );
    const seen = new Map<string, number>();
    for (const [status, codes] of rows) {
      for (const c of codes) {
        assert.ok(!seen.has(c), `${c} under ${seen.get(c)} and ${status}`);
        seen.set(c, status);
      }
    }
    for (const code of Object.keys(EXIT_FOR_CODE) as ErrorCode[]) {
      assert.equal(seen.get(code), exitCodeFor(code), `${code}: the doc says ${seen.get(code)}`);
    }
    assert.equal(seen.size, Object.keys(EXIT_FOR_CODE).length);
  });

  test("the README's summary names the same statuses", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Exit statuses'), readme.indexOf('## More'));
    assert.match(section, /\[docs\/cli\.md\]\(docs\/cli\.md\)/);
    const named = new Set([...section.matchAll(/\b(\d{1,3})\b/g)].map((m) => Number(m[1])));
    assert.deepEqual(
      [...named].sort((a, b) => a - b),
      [...new Set(Object.values(EXIT))].sort((a, b) => a - b),
    );
  });
});

describe('--strict', () => {
  test('regression: a warning made an error is its documented status, not internal error (70)', () => {
    const lines: string[] = [];
    const original = console.error;
    console.error = (...a: unknown[]) => void lines.push(a.join(' '));
    let status: number;
    try {
      status = reportError(strictWarning({ code: 'ELF_INVALID', message: '/usr/bin/x: truncated' }), false);
    } finally {
      console.error = original;
    }
    assert.equal(status, EXIT.strict);
    assert.ok(docTable().has(status), 'the status is in docs/cli.md');
    assert.match(
      lines[0]!,
      /^kjx: error: \/usr\/bin\/x: truncated \[ELF_INVALID\] \(a warning; --strict makes it an error\)$/,
    );
    assert.match(lines.join('\n'), /hint: fix what it says, or build without --strict/);
    assert.doesNotMatch(lines.join('\n'), /internal error/);
  });
});
