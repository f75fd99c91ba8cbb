/**
 * Reader for the Unix `ar` archive, the outer container of a .deb.
 *
 * Format: ar(5) and deb(5). The file starts with the magic "!<arch>\n"; each member
 * is a 60-byte ASCII header (name 16, mtime 12, uid 6, gid 6, mode 8, size 10,
 * terminator "`\n") followed by `size` bytes of data and one "\n" pad byte when
 * `size` is odd. deb(5) allows only the common format with short names and an
 * optional GNU-style trailing slash, so the GNU "//" long-name table and BSD "#1/"
 * names are deliberately not interpreted: a .deb never needs them.
 *
 * Pure: bytes in, members out. Member data are views into the input buffer.
 */
import { KjxError } from '../util/errors.js';

/** One member of an ar archive; `data` is a view into the archive's buffer. */
export interface ArMember {
  name: string;
  data: Buffer;
}

const MAGIC = '!<arch>\n';
const HEADER_SIZE = 60;

/**
 * Parse an ar archive held in memory.
 *
 * @param data the whole archive
 * @param name what to call it in error messages (usually the .deb file name)
 * @throws KjxError DEB_INVALID on bad magic, a malformed header or truncation,
 *   naming `name` and the byte offset of the problem
 */
export function parseAr(data: Buffer, name: string): ArMember[] {
  if (data.length < MAGIC.length || data.toString('latin1', 0, MAGIC.length) !== MAGIC) {
    throw invalid(name, 0, 'not an ar archive (missing "!<arch>" magic)');
  }
  const members: ArMember[] = [];
  let off = MAGIC.length;
  while (off < data.length) {
    if (off + HEADER_SIZE > data.length) {
      throw invalid(name, off, `truncated member header (${data.length - off} of ${HEADER_SIZE} bytes)`);
    }
    // latin1 maps bytes 1:1, so odd bytes show up in the checks below instead of vanishing.
    const header = data.toString('latin1', off, off + HEADER_SIZE);
    if (header.slice(58, 60) !== '`\n') throw invalid(name, off, 'bad member header terminator');
    const memberName = parseName(header.slice(0, 16));
    const sizeField = header.slice(48, 58).trimEnd();
    if (!/^[0-9]+$/.test(sizeField)) {
      throw invalid(name, off, `member "${memberName}" has a bad size field "${sizeField}"`);
    }
    const size = Number(sizeField);
    const start = off + HEADER_SIZE;
    if (start + size > data.length) {
      throw invalid(
        name,
        off,
        `member "${memberName}" is truncated (${data.length - start} of ${size} bytes present)`,
      );
    }
    members.push({ name: memberName, data: data.subarray(start, start + size) });
    off = start + size;
    if (size % 2 === 1) {
      // The pad byte is part of the format; an archive cut right before it is truncated.
      if (off >= data.length) throw invalid(name, off, `missing padding byte after member "${memberName}"`);
      off += 1;
    }
  }
  return members;
}

/** Names are space-padded; GNU ar ends them with "/" (but "/" and "//" are names themselves). */
function parseName(field: string): string {
  const trimmed = field.trimEnd();
  if (trimmed.length > 1 && trimmed.endsWith('/') && trimmed !== '//') return trimmed.slice(0, -1);
  return trimmed;
}

function invalid(name: string, offset: number, what: string): KjxError {
  return new KjxError('DEB_INVALID', `${name}: ${what} at offset ${offset}`, {
    hint: 'the file is damaged or not a Debian package; download it again',
  });
}
