/**
 * Kernel configuration fragments: `CONFIG_X=value` lines and `# CONFIG_X is not set`,
 * merged in order the way the kernel's scripts/kconfig/merge_config.sh merges them
 * (a later fragment's value replaces an earlier one's, and the replacement is
 * reported), and checked against the `.config` Kconfig wrote: an option asked for
 * that did not survive (a dependency is off, or the option does not exist in this
 * kernel) is named, as merge_config.sh does after its run.
 *
 * Text in, values out: reading files and running make is kernel/build.ts's.
 */
import { configLine, CONFIG_NOT_SET_RE as NOT_SET, CONFIG_SET_RE as SET } from '../spec/kernel-config.js';
import { KjxError } from '../util/errors.js';

/** One option as a fragment sets it; `n` for "is not set". */
export interface ConfigOption {
  name: string;
  /** `y`, `m`, `n`, a number, or a quoted string as written. */
  value: string;
  /** `file:line` (or the spec entry) that set it. */
  where: string;
}

/** An option a later fragment set again to another value. */
export interface Redefinition {
  name: string;
  from: ConfigOption;
  to: ConfigOption;
}

/** An option asked for whose final value differs. */
export interface LostOption {
  name: string;
  wanted: string;
  /** The value in the final .config; `n` when it is not there at all. */
  got: string;
  where: string;
}

/** The options of one fragment, in order; a malformed line is an error naming it. */
export function parseFragment(text: string, source: string): ConfigOption[] {
  const out: ConfigOption[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const where = `${source}:${i + 1}`;
    const option = configLine(line);
    if (option) {
      out.push({ ...option, where });
      continue;
    }
    // a comment; "# CONFIG_X is not set" was read above
    if (line === '' || line.startsWith('#')) continue;
    throw new KjxError('SPEC_INVALID', `${where}: not a kernel config line: ${JSON.stringify(line)}`, {
      hint: 'write CONFIG_NAME=y, =m, =n, a number, a "quoted string", or "# CONFIG_NAME is not set"',
    });
  }
  return out;
}

/** Fragments merged in order: the last value of each option wins; replacements are listed. */
export function mergeFragments(fragments: ConfigOption[][]): {
  options: Map<string, ConfigOption>;
  redefined: Redefinition[];
} {
  const options = new Map<string, ConfigOption>();
  const redefined: Redefinition[] = [];
  for (const fragment of fragments) {
    for (const o of fragment) {
      const prev = options.get(o.name);
      if (prev && prev.value !== o.value) redefined.push({ name: o.name, from: prev, to: o });
      // a later line moves the option to its place, as merge_config.sh's sed + append does
      options.delete(o.name);
      options.set(o.name, o);
    }
  }
  return { options, redefined };
}

/** A merged fragment as Kconfig reads it (KCONFIG_ALLCONFIG). */
export function renderFragment(options: Iterable<ConfigOption>): string {
  let out = '';
  for (const o of options) out += o.value === 'n' ? `# ${o.name} is not set\n` : `${o.name}=${o.value}\n`;
  return out;
}

/** Every option a final `.config` sets, `n` for "is not set". */
export function readDotConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const notSet = NOT_SET.exec(line);
    if (notSet) out.set(notSet[1]!, 'n');
    const set = SET.exec(line);
    if (set) out.set(set[1]!, set[2]!);
  }
  return out;
}

/** Options asked for that the final `.config` does not have as asked. */
export function lostOptions(asked: Iterable<ConfigOption>, final: Map<string, string>): LostOption[] {
  const lost: LostOption[] = [];
  for (const o of asked) {
    const got = final.get(o.name) ?? 'n';
    if (got !== o.value) lost.push({ name: o.name, wanted: o.value, got, where: o.where });
  }
  return lost;
}

/** The warning merge_config.sh would print for a lost option, in kjx's words. */
export function lostWarning(l: LostOption): string {
  const why =
    l.wanted === 'n'
      ? 'another option selects it, or it has no prompt in this configuration (some appear only with CONFIG_EXPERT=y)'
      : 'it does not exist in this kernel or an option it depends on is off';
  return `kernel config: ${l.name}=${l.wanted} (${l.where}) did not survive, the kernel has ${l.name}=${l.got}: ${why}`;
}
