// Tables for status and dora, apart from output.ts: measuring display width loads string-width,
// which the commands that print no table should not pay for at start-up.
import chalk from 'chalk';
import stringWidth from 'string-width';

/** A cell cut to `width` terminal columns, with an ellipsis when it was longer. */
function truncate(text: string, width: number): string {
  if (stringWidth(text) <= width) return text;
  let out = '';
  for (const { segment } of new Intl.Segmenter().segment(text)) {
    if (stringWidth(out + segment) > width - 1) break;
    out += segment;
  }
  return `${out}…`;
}

/**
 * Rows as aligned columns, measured in terminal columns (CJK characters and emoji take two);
 * the header is dimmed on a terminal. Wider than `maxWidth` (the terminal's, on one), the widest
 * columns are cut with an ellipsis until the table fits.
 */
export function renderTable(
  headers: string[],
  rows: string[][],
  maxWidth: number | undefined = process.stdout.isTTY ? process.stdout.columns : undefined,
): string {
  const widths = headers.map((h, i) => Math.max(stringWidth(h), ...rows.map((r) => stringWidth(r[i] ?? ''))));
  const gaps = 2 * (headers.length - 1);
  if (maxWidth !== undefined) {
    // A column keeps at least 8 columns (or its header's width, when shorter).
    const floor = headers.map((h) => Math.min(stringWidth(h), 8));
    for (let total = widths.reduce((a, b) => a + b, gaps); total > maxWidth; total -= 1) {
      const widest = widths.reduce((best, w, i) => (w - floor[i]! > widths[best]! - floor[best]! ? i : best), 0);
      if (widths[widest]! <= floor[widest]!) break;
      widths[widest]! -= 1;
    }
  }
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const text = truncate(cell, widths[i]!);
        return i === cells.length - 1 ? text : text + ' '.repeat(widths[i]! - stringWidth(text));
      })
      .join('  ')
      .trimEnd();
  return [chalk.dim(line(headers)), ...rows.map(line)].join('\n');
}
