import { INVOICE_COLUMNS, type InvoiceRow } from './schema';

/** RFC 4180 quoting: only cells that need it are quoted, with inner quotes doubled. */
function csvCell(value: string | number | boolean): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A CSV batch: header line, then one line per row, each ending in LF. */
export function* serializeCsv(rows: Iterable<InvoiceRow>): Iterable<string> {
  yield `${INVOICE_COLUMNS.join(',')}\n`;
  for (const row of rows) {
    let line = '';
    for (let k = 0; k < INVOICE_COLUMNS.length; k++) {
      line += (k === 0 ? '' : ',') + csvCell(row[INVOICE_COLUMNS[k]]);
    }
    yield `${line}\n`;
  }
}

/** A JSON Lines batch: one object per line, keys in column order. */
export function* serializeJsonl(rows: Iterable<InvoiceRow>): Iterable<string> {
  for (const row of rows) {
    const ordered: Record<string, unknown> = {};
    for (const column of INVOICE_COLUMNS) ordered[column] = row[column];
    yield `${JSON.stringify(ordered)}\n`;
  }
}

/** Joins small strings into ~`targetBytes` pieces so a stream moves few large chunks, not one per line. */
export function* coalesce(pieces: Iterable<string>, targetChars = 64 * 1024): Iterable<string> {
  let buffer = '';
  for (const piece of pieces) {
    buffer += piece;
    if (buffer.length >= targetChars) {
      yield buffer;
      buffer = '';
    }
  }
  if (buffer.length > 0) yield buffer;
}
