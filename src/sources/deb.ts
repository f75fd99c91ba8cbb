/**
 * Reader for Debian binary packages (.deb), in memory.
 *
 * Format: deb(5). An ar archive (ar.ts) whose members are, in this exact order:
 * "debian-binary" ("2.x\n"), "control.tar[.gz|.xz|.zst]" and
 * "data.tar[.gz|.xz|.zst]". Members whose names start with "_" may sit between
 * them and are ignored, as are members after data.tar. dpkg also accepts
 * data.tar.bz2 and data.tar.lzma; Debian has not produced those in years, so they
 * are refused with a clear message rather than pulling in two more decoders.
 *
 * Pure: bytes in, parsed control fields and tar entries out. Nothing is extracted
 * to disk; stage.ts turns the entries into a Tree, checking that they are safe.
 */
import { type Budget, defaultBudget } from '../util/budget.js';
import { type Compression, compressionOfExtension, decompressSync } from '../util/compression.js';
import type { WarnFn } from '../util/errors.js';
import { KjxError } from '../util/errors.js';
import { parseAr } from './ar.js';
import { type ControlStanza, parseControl } from './control.js';
import { parseTar, type TarEntry } from './tar.js';

/** What `readDeb` finds in a package. */
export interface DebContents {
  /** Fields of the package's `control` file (Package, Version, Architecture, ...). */
  control: ControlStanza;
  /** Entries of data.tar, in archive order, names as archived ("./usr/bin/x"). */
  dataEntries: TarEntry[];
}

/** Options for `readDeb`. */
export interface ReadDebOptions {
  /** Receives recoverable oddities found while reading the tar members. */
  warn?: WarnFn;
  /**
   * What the decompressed members may take together; default: `defaultLimit` of the
   * .deb's size (util/budget.ts), so a local .deb that is a compression bomb stops
   * while it inflates.
   */
  budget?: Budget;
}

const DAMAGED = 'the package is damaged or truncated; download it again';

const MEMBER = /^(control|data)\.tar(?:\.(gz|xz|zst|bz2|lzma))?$/;

/**
 * Read a .deb held in memory.
 *
 * @param data the whole .deb file
 * @param debName what to call it in error messages (usually its file name)
 * @throws KjxError DEB_INVALID when the file is not a version 2.x .deb, a required
 *   member is missing or out of order, a member cannot be decompressed or parsed,
 *   or control.tar has no `control` file
 */
export function readDeb(data: Buffer, debName: string, options: ReadDebOptions = {}): DebContents {
  const members = parseAr(data, debName);
  const first = members[0];
  if (first?.name !== 'debian-binary') {
    throw invalid(debName, `first member is "${first?.name ?? '(none)'}", expected "debian-binary"`);
  }
  // deb(5): later lines and a higher minor number must be ignored; only the major matters.
  const version = first.data.toString('latin1').split('\n')[0]!;
  if (!/^2\.[0-9]+$/.test(version)) {
    throw invalid(
      debName,
      `unsupported format version "${version.slice(0, 20)}" in debian-binary (expected 2.x)`,
    );
  }

  let control: { name: string; data: Buffer; format: Compression } | undefined;
  let dataMember: { name: string; data: Buffer; format: Compression } | undefined;
  for (const m of members.slice(1)) {
    if (m.name.startsWith('_')) continue;
    const match = MEMBER.exec(m.name);
    const expected = control ? 'data' : 'control';
    if (!match || match[1] !== expected) {
      throw invalid(debName, `unexpected member "${m.name}" where ${expected}.tar was expected`);
    }
    const ext = match[2];
    if (ext === 'bz2' || ext === 'lzma') {
      throw new KjxError(
        'DEB_INVALID',
        `${debName}: member "${m.name}" uses ${ext}, which kjx does not read`,
        {
          hint: 'use a package built with gzip, xz or zstd compression (every current Debian package is)',
        },
      );
    }
    const member = { name: m.name, data: m.data, format: compressionOfExtension(ext ? `.${ext}` : '')! };
    if (!control) {
      control = member;
      continue;
    }
    dataMember = member;
    break; // deb(5): members after data.tar are ignored
  }
  if (!control) throw invalid(debName, 'no control.tar member');
  if (!dataMember) throw invalid(debName, 'no data.tar member');

  const budget =
    options.budget ??
    defaultBudget(
      debName,
      data.length,
      'DEB_INVALID',
      'the .deb claims more data than it can hold; is it a Debian package?',
    );
  const unpack = (m: { data: Buffer; format: Compression }, what: string): Buffer =>
    decompressSync(m.data, m.format, { what, code: 'DEB_INVALID', hint: DAMAGED, limit: budget });
  const controlWhat = `${debName}: ${control.name}`;
  const controlEntries = parseTar(unpack(control, controlWhat), controlWhat, options);
  const controlFile = controlEntries.find(
    (e) => e.type === 'file' && (e.name === 'control' || e.name === './control'),
  );
  if (!controlFile) throw invalid(debName, `${control.name} has no "control" file`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(controlFile.data);
  } catch (cause) {
    throw new KjxError('DEB_INVALID', `${debName}: control file is not valid UTF-8`, { cause });
  }

  const dataWhat = `${debName}: ${dataMember.name}`;
  return {
    control: parseControl(text, `${debName}: control`),
    dataEntries: parseTar(unpack(dataMember, dataWhat), dataWhat, options),
  };
}

function invalid(debName: string, what: string): KjxError {
  return new KjxError('DEB_INVALID', `${debName}: ${what}`, {
    hint: 'the file is damaged or not a Debian binary package (deb(5)); download it again',
  });
}
