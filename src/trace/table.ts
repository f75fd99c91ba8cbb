/**
 * A plain-text table with aligned columns, for per-process and per-syscall counts:
 *
 *     COMM     PID  COUNT
 *     -------  ---  -----
 *     sshd     123   4096
 *
 * Numbers align right, text left (unless a column says otherwise). Widths count code
 * points, so non-ASCII names line up as long as they are one column wide each.
 */

export type Cell = string | number;

export interface TableColumn {
  /** Property of each row to show. */
  key: string;
  /** Column heading (default: the key). */
  header?: string;
  /** Default: right when every value present in the column is a number, else left. */
  align?: 'left' | 'right';
}

function width(s: string): number {
  return [...s].length;
}

function pad(s: string, w: number, align: 'left' | 'right'): string {
  const fill = ' '.repeat(Math.max(0, w - width(s)));
  return align === 'right' ? fill + s : s + fill;
}

function cellText(v: Cell | undefined): string {
  if (v === undefined) return '';
  // one line per row: a newline or tab in a name would break the columns
  return String(v).replace(/[\t\n\r]/g, ' ');
}

/**
 * The rows as an aligned table: a header line, a line of dashes, one line per row; no
 * trailing spaces, no final newline. Missing cells are empty.
 */
export function formatTable(rows: Record<string, Cell>[], columns: TableColumn[]): string {
  const headers = columns.map((c) => c.header ?? c.key);
  const cells = rows.map((r) => columns.map((c) => cellText(r[c.key])));
  const aligns = columns.map((c) => {
    const present = rows.map((r) => r[c.key]).filter((v) => v !== undefined);
    return c.align ?? (present.length > 0 && present.every((v) => typeof v === 'number') ? 'right' : 'left');
  });
  const widths = columns.map((_, i) => Math.max(width(headers[i]!), ...cells.map((r) => width(r[i]!))));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => pad(v, widths[i]!, aligns[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
