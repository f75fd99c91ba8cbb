/**
 * docs/cli.md, generated from what the CLI is: its commands and options as
 * commander holds them (main.ts), and the exit statuses with the error codes
 * that lead to each (exit-codes.ts). `npm run docs:cli` writes the file;
 * test/cli/cli-doc.test.ts fails when the committed one differs.
 */
import type { Command, Option } from 'commander';
import type { ErrorCode } from '../util/errors.js';
import { EXIT, EXIT_FOR_CODE, EXIT_MEANING, type ExitName } from './exit-codes.js';
import { LIMITS_DOC } from './vm-options.js';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function optionRows(options: readonly Option[]): string[] {
  return options.map((o) => {
    const d = o.defaultValue;
    const dflt = d === undefined || (Array.isArray(d) && d.length === 0) ? '' : `\`${String(d)}\``;
    return `| \`${cell(o.flags)}\` | ${cell(o.description)} | ${dflt} |`;
  });
}

/** The exit-status table: status, meaning, and the error codes that end in it. */
export function exitStatusTable(): string {
  const codes = new Map<ExitName, ErrorCode[]>();
  for (const [code, name] of Object.entries(EXIT_FOR_CODE) as [ErrorCode, ExitName][]) {
    codes.set(name, [...(codes.get(name) ?? []), code]);
  }
  const names = (Object.keys(EXIT) as ExitName[]).sort((a, b) => EXIT[a] - EXIT[b]);
  return [
    '| status | meaning | error codes |',
    '| --- | --- | --- |',
    ...names.map(
      (n) =>
        `| ${EXIT[n]} | ${cell(EXIT_MEANING[n])} | ${(codes.get(n) ?? []).map((c) => `\`${c}\``).join(', ')} |`,
    ),
  ].join('\n');
}

/** The whole of docs/cli.md for `program` (makeProgram() in main.ts). */
export function renderCliDoc(program: Command): string {
  const out: string[] = [
    '# The kjx command line',
    '',
    '<!-- Generated from src/cli by `npm run docs:cli`; test/cli/cli-doc.test.ts checks it. Edit the code, not this file. -->',
    '',
    `\`kjx [global options] <command> [options]\` — ${program.description()}.`,
    '',
    '## Global options',
    '',
    '| option | what it does | default |',
    '| --- | --- | --- |',
    ...optionRows(program.options),
    '',
    'Warnings of a build (a library or module that cannot be resolved, a component that',
    'falls back to something slower) are printed as `kjx: warning: ... [CODE]` by every',
    'command that builds: `build`, `run`, `test`, `boot` and `trace`. A build reusing',
    'cached results says its warnings again. With `--strict` the first one stops the',
    `command with exit status ${EXIT.strict} (\`STRICT_WARNING\`), before any VM starts.`,
    '',
    '## Time limits of a VM',
    '',
    LIMITS_DOC,
    '',
    '## Commands',
    '',
  ];
  // a command with subcommands (`kjx cluster up`) gets a section for each, one level down
  const section = (c: Command, path: string, level: string): void => {
    out.push(`${level} ${path}`, '', '```', `${path} ${c.usage()}`, '```', '', `${c.description()}.`, '');
    if (c.options.length > 0) {
      out.push('| option | what it does | default |', '| --- | --- | --- |', ...optionRows(c.options), '');
    }
    for (const sub of c.commands) section(sub, `${path} ${sub.name()}`, `${level}#`);
  };
  for (const c of program.commands) section(c, `kjx ${c.name()}`, '###');
  out.push(
    '## Exit statuses',
    '',
    exitStatusTable(),
    '',
    "`kjx run`, `kjx exec` and `kjx ssh -- CMD` otherwise exit with the guest command's own",
    'status; a guest command can of course also exit 123-125, so use `--json` (which',
    'carries `outcome`) when you must tell them apart.',
    '',
  );
  return out.join('\n');
}
