import { z } from 'zod';
import { BatchUnreadableError } from '../errors';
import { describeIssues, parseWith } from '../validation';
import { type ByteSource, batchBytes } from './byteSource';
import { CsvRecordSplitter } from './csvRecords';
import { type BatchSourceInfo, resolveFormat } from './formats';
import { JsonlRecordSplitter } from './jsonlRecords';
import { DEFAULT_LIMITS, type DefectSite, type RawRecord, type RecordLimits } from './limits';
import { acceptedJsonRow, acceptedRow } from './rowFastPath';
import { INVOICE_COLUMNS, INVOICE_ROW_SCHEMA, type InvoiceRow } from './schema';

export { type BatchFormat, type BatchSourceInfo, detectFormat } from './formats';
export { type BatchSummary, BatchTally } from './tally';

/**
 * One data row of a batch. `rowNumber` is 1-based and counts data rows only: the CSV header and
 * blank lines are not counted, so in both formats it is "the Nth non-blank record after the
 * header" (for a CSV without quoted line breaks, the physical line number minus one).
 */
export type ParsedRecord =
  | { kind: 'accepted'; rowNumber: number; row: InvoiceRow }
  | { kind: 'rejected'; rowNumber: number; reason: string; issues: { path: string; message: string }[] };

export interface ParseOptions {
  maxFieldBytes?: number;
  maxRecordBytes?: number;
}

const OPTIONS_SCHEMA = z.object({
  maxFieldBytes: z.number().int().positive().optional(),
  maxRecordBytes: z.number().int().positive().optional(),
});

interface RowDecoder {
  push(chunk: Buffer): RawRecord<unknown>[];
  end(): RawRecord<unknown>[];
}

/**
 * Streams a CSV (with header) or JSON Lines batch, optionally gzip, into accepted and rejected
 * rows. Only one chunk plus one row is ever held. A batch that is not a batch at all (empty,
 * binary, bad header, truncated gzip) throws BatchUnreadableError; rows yielded before a late
 * failure stay valid, and the error names the last row read (`details.afterRow`).
 */
export async function* parseInvoiceBatch(
  source: ByteSource,
  info: BatchSourceInfo,
  options: ParseOptions = {},
): AsyncGenerator<ParsedRecord> {
  for await (const records of parseInvoiceBatchChunks(source, info, options)) yield* records;
}

/**
 * parseInvoiceBatch a decoded chunk at a time (the rows of one chunk in order): for readers of
 * whole batches, where one await per row would cost more than parsing the row.
 */
export async function* parseInvoiceBatchChunks(
  source: ByteSource,
  info: BatchSourceInfo,
  options: ParseOptions = {},
): AsyncGenerator<ParsedRecord[]> {
  const parsed = parseWith(OPTIONS_SCHEMA, options, 'batch parse options');
  const limits: RecordLimits = {
    maxFieldBytes: parsed.maxFieldBytes ?? DEFAULT_LIMITS.maxFieldBytes,
    maxRecordBytes: parsed.maxRecordBytes ?? DEFAULT_LIMITS.maxRecordBytes,
  };
  const { format } = resolveFormat(info);
  const rows = format === 'csv' ? new CsvRows(limits) : new JsonlRows(limits);
  let rowNumber = 0;
  const bytes = batchBytes(source, info.fileName)[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await bytes.next();
    } catch (error) {
      throw withPosition(error, rowNumber);
    }
    const records = next.done ? rows.end() : rows.push(next.value);
    const parsed: ParsedRecord[] = [];
    for (const record of records) {
      const result = rows.toParsed(record, rowNumber + 1);
      if (result === undefined) continue;
      rowNumber++;
      parsed.push(result);
    }
    if (parsed.length > 0) yield parsed;
    if (next.done) break;
  }
  if (rowNumber === 0) throw new BatchUnreadableError(rows.emptyMessage(info.fileName), 'empty');
}

function withPosition(error: unknown, rowsRead: number): unknown {
  if (!(error instanceof BatchUnreadableError) || rowsRead === 0) return error;
  return new BatchUnreadableError(
    `${error.message} (stopped after row ${rowsRead}; the ${rowsRead} rows before it were read)`,
    error.reason,
    { cause: error, details: { afterRow: rowsRead } },
  );
}

function accept(rowNumber: number, value: unknown): ParsedRecord {
  const row = acceptedJsonRow(value);
  if (row !== undefined) return { kind: 'accepted', rowNumber, row };
  return validate(rowNumber, value);
}

/** Zod's verdict, with its issues on a rejection. */
function validate(rowNumber: number, value: unknown): ParsedRecord {
  let result: ReturnType<typeof INVOICE_ROW_SCHEMA.safeParse>;
  try {
    result = INVOICE_ROW_SCHEMA.safeParse(value);
  } catch (error) {
    // A check that throws on odd input must cost one row, never the batch.
    return rejection(rowNumber, [
      { path: '(row)', message: `could not be validated: ${(error as Error).message}` },
    ]);
  }
  if (result.success) return { kind: 'accepted', rowNumber, row: result.data };
  return rejection(rowNumber, withOffendingValues(describeIssues(result.error), value));
}

/** Appends the offending cell (shortened) to each issue, so "Invalid input" says what it got. */
function withOffendingValues(
  issues: { path: string; message: string }[],
  value: unknown,
): { path: string; message: string }[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return issues;
  const record = value as Record<string, unknown>;
  return issues.map((issue) => {
    if (!Object.hasOwn(record, issue.path)) return issue;
    const shown = JSON.stringify(record[issue.path]) ?? String(record[issue.path]);
    const preview = shown.length > 40 ? `${shown.slice(0, 40)}…` : shown;
    return { path: issue.path, message: `${issue.message} (got ${preview})` };
  });
}

/** A splitter defect as an issue; `columnNames` turns CSV cell positions into header names. */
function defect(
  rowNumber: number,
  site: DefectSite,
  reason: string,
  columnNames: readonly string[] = [],
): ParsedRecord {
  if (site.kind === 'row') return rejection(rowNumber, [{ path: '(row)', message: reason }]);
  const label = site.kind === 'key' ? site.key : (columnNames[site.index] ?? `cell ${site.index + 1}`);
  return rejection(rowNumber, [{ path: label, message: `${label} ${reason}` }]);
}

function rejection(rowNumber: number, issues: { path: string; message: string }[]): ParsedRecord {
  const reason = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return { kind: 'rejected', rowNumber, reason, issues };
}

/** Turns split records into ParsedRecords; `undefined` means "not a data row" (the header). */
abstract class Rows {
  protected abstract readonly decoder: RowDecoder;
  abstract toParsed(record: RawRecord<unknown>, rowNumber: number): ParsedRecord | undefined;
  abstract emptyMessage(fileName: string): string;

  push(chunk: Buffer): RawRecord<unknown>[] {
    return this.decoder.push(chunk);
  }
  end(): RawRecord<unknown>[] {
    return this.decoder.end();
  }
}

class JsonlRows extends Rows {
  protected readonly decoder: JsonlRecordSplitter;
  constructor(limits: RecordLimits) {
    super();
    this.decoder = new JsonlRecordSplitter(limits);
  }
  toParsed(record: RawRecord<unknown>, rowNumber: number): ParsedRecord {
    if (record.kind === 'malformed') return defect(rowNumber, record.site, record.reason);
    return accept(rowNumber, record.value);
  }
  emptyMessage(fileName: string): string {
    return `Batch "${fileName}" has no rows (only blank lines)`;
  }
}

const MAX_NAME_IN_MESSAGE = 40;

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 10).map((n) => {
    const short = n.length > MAX_NAME_IN_MESSAGE ? `${n.slice(0, MAX_NAME_IN_MESSAGE)}…` : n;
    return JSON.stringify(short);
  });
  return names.length > 10 ? `${shown.join(', ')} and ${names.length - 10} more` : shown.join(', ');
}

class CsvRows extends Rows {
  protected readonly decoder: CsvRecordSplitter;
  /** For each schema column, its position in the file's header. */
  private positions: number[] | undefined;
  private headerWidth = 0;
  private names: readonly string[] = [];

  constructor(limits: RecordLimits) {
    super();
    this.decoder = new CsvRecordSplitter(limits);
  }

  toParsed(record: RawRecord<unknown>, rowNumber: number): ParsedRecord | undefined {
    if (!this.positions) {
      this.readHeader(record as RawRecord<string[]>);
      return undefined;
    }
    if (record.kind === 'malformed') return defect(rowNumber, record.site, record.reason, this.names);
    const cells = record.value as string[];
    if (cells.length !== this.headerWidth) return rejection(rowNumber, this.widthIssues(cells.length));
    const positions = this.positions;
    const row = acceptedRow(cells, positions);
    if (row !== undefined) return { kind: 'accepted', rowNumber, row };
    const object: Record<string, string> = {};
    for (let k = 0; k < INVOICE_COLUMNS.length; k++) object[INVOICE_COLUMNS[k]] = cells[positions[k]];
    return validate(rowNumber, object);
  }

  emptyMessage(fileName: string): string {
    return this.positions
      ? `Batch "${fileName}" has a header but no data rows`
      : `Batch "${fileName}" has no header and no rows (only blank lines)`;
  }

  private widthIssues(width: number): { path: string; message: string }[] {
    const names = this.names;
    if (width < this.headerWidth) {
      const missing = names.slice(width);
      return [
        {
          path: '(row)',
          message: `row has ${width} cells but the header has ${this.headerWidth}: missing ${missing.join(', ')}`,
        },
      ];
    }
    return [
      {
        path: '(row)',
        message: `row has ${width} cells but the header has ${this.headerWidth}: ${width - this.headerWidth} extra`,
      },
    ];
  }

  private readHeader(record: RawRecord<string[]>): void {
    if (record.kind === 'malformed') {
      const where = record.site.kind === 'cell' ? `cell ${record.site.index + 1} ` : '';
      throw new BatchUnreadableError(`CSV header line is unreadable: ${where}${record.reason}`, 'bad-header');
    }
    const names = record.value.map((n) => n.trim());
    const expected = new Set<string>(INVOICE_COLUMNS);
    const seen = new Set<string>();
    const duplicates = names.filter((n) => (seen.has(n) ? true : (seen.add(n), false)));
    const missing = INVOICE_COLUMNS.filter((c) => !seen.has(c));
    const unknown = names.filter((n) => !expected.has(n));
    if (missing.length === INVOICE_COLUMNS.length) {
      throw new BatchUnreadableError(
        `CSV has no header line: the first line has none of the columns ${INVOICE_COLUMNS.join(', ')}`,
        'bad-header',
        { details: { missing, unknown: unknown.slice(0, 10) } },
      );
    }
    const problems: string[] = [];
    if (missing.length > 0) problems.push(`missing columns ${listNames(missing)}`);
    if (unknown.length > 0) problems.push(`unknown columns ${listNames(unknown)}`);
    if (duplicates.length > 0) problems.push(`duplicate columns ${listNames(duplicates)}`);
    if (problems.length > 0) {
      throw new BatchUnreadableError(`CSV header has ${problems.join('; ')}`, 'bad-header', {
        details: { missing, unknown: unknown.slice(0, 10), duplicates: duplicates.slice(0, 10) },
      });
    }
    this.positions = INVOICE_COLUMNS.map((c) => names.indexOf(c));
    this.headerWidth = names.length;
    this.names = names;
  }
}
