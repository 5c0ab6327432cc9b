import { z } from 'zod';
import { BatchUnreadableError } from '../errors';
import { describeIssues, parseWith } from '../validation';
import { type ByteSource, batchBytes } from './byteSource';
import { CsvRecordSplitter } from './csvRecords';
import { type BatchSourceInfo, resolveFormat } from './formats';
import { JsonlRecordSplitter } from './jsonlRecords';
import { DEFAULT_LIMITS, type DefectSite, type RawRecord, type RecordLimits } from './limits';
import { acceptedJsonRow, acceptedPartialRow, acceptedRow } from './rowFastPath';
import {
  INVOICE_COLUMNS,
  INVOICE_ROW_SCHEMA,
  type InvoiceColumnName,
  type InvoiceRow,
  type PartialInvoiceRow,
} from './schema';

export { type BatchFormat, type BatchSourceInfo, detectFormat } from './formats';
export { type BatchSummary, BatchTally } from './tally';

/**
 * One data row of a batch. `rowNumber` is 1-based and counts data rows only: the CSV header and
 * blank lines are not counted, so in both formats it is "the Nth non-blank record after the
 * header" (for a CSV without quoted line breaks, the physical line number minus one).
 */
export type ParsedRecord<Row = InvoiceRow> =
  | { kind: 'accepted'; rowNumber: number; row: Row }
  | { kind: 'rejected'; rowNumber: number; reason: string; issues: { path: string; message: string }[] };

export interface ParseOptions {
  maxFieldBytes?: number;
  maxRecordBytes?: number;
}

export interface PartialParseOptions extends ParseOptions {
  /**
   * Called once, before the first accepted row, with the columns the batch carries (schema order):
   * a CSV's header, or the keys of a JSON Lines batch's first object row.
   */
  onColumns?: (columns: readonly InvoiceColumnName[]) => void;
}

/**
 * Which columns a batch must carry. `all`: every schema column (training and the single-model
 * tools). `present`: only `invoiceId` (a row's identity); the columns a batch does carry are
 * validated with the same checks, and every row must carry the same ones.
 */
type ColumnRule =
  { kind: 'all' } | { kind: 'present'; onColumns: (columns: readonly InvoiceColumnName[]) => void };

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
  // With every column required, every accepted row is a whole InvoiceRow.
  yield* parseChunks(source, info, options, { kind: 'all' }) as AsyncGenerator<ParsedRecord[]>;
}

/**
 * A batch that may carry only some of the columns (say, no label for one of the models): the
 * columns present are validated as in parseInvoiceBatchChunks, and `options.onColumns` is told
 * which they are before the first row. A header naming an unknown or duplicate column, or one
 * without `invoiceId`, still makes the batch unreadable.
 */
export async function* parsePartialBatchChunks(
  source: ByteSource,
  info: BatchSourceInfo,
  options: PartialParseOptions = {},
): AsyncGenerator<ParsedRecord<PartialInvoiceRow>[]> {
  const { onColumns = () => {}, ...limits } = options;
  yield* parseChunks(source, info, limits, { kind: 'present', onColumns });
}

async function* parseChunks(
  source: ByteSource,
  info: BatchSourceInfo,
  options: ParseOptions,
  rule: ColumnRule,
): AsyncGenerator<ParsedRecord<PartialInvoiceRow>[]> {
  const parsed = parseWith(OPTIONS_SCHEMA, options, 'batch parse options');
  const limits: RecordLimits = {
    maxFieldBytes: parsed.maxFieldBytes ?? DEFAULT_LIMITS.maxFieldBytes,
    maxRecordBytes: parsed.maxRecordBytes ?? DEFAULT_LIMITS.maxRecordBytes,
  };
  const { format } = resolveFormat(info);
  const rows = format === 'csv' ? new CsvRows(limits, rule) : new JsonlRows(limits, rule);
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
    const parsed: ParsedRecord<PartialInvoiceRow>[] = [];
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

/**
 * The columns one batch carries and the schema that checks its rows: the full row schema, or the
 * same schema picked down to the columns present (built once per batch, not per row).
 */
class CarriedColumns {
  readonly all: boolean;
  readonly schema: z.ZodType<PartialInvoiceRow>;

  constructor(readonly columns: readonly InvoiceColumnName[]) {
    this.all = columns.length === INVOICE_COLUMNS.length;
    this.schema = this.all
      ? INVOICE_ROW_SCHEMA
      : INVOICE_ROW_SCHEMA.pick(
          Object.fromEntries(columns.map((c) => [c, true])) as Record<InvoiceColumnName, true>,
        );
  }
}

const ALL_COLUMNS = new CarriedColumns(INVOICE_COLUMNS);

/** The columns of the schema that `names` holds, in schema order. */
function carriedOf(names: Iterable<string>): InvoiceColumnName[] {
  const present = new Set(names);
  return INVOICE_COLUMNS.filter((c) => present.has(c));
}

function accept(rowNumber: number, value: unknown, carried: CarriedColumns): ParsedRecord<PartialInvoiceRow> {
  const row = carried.all ? acceptedJsonRow(value) : undefined;
  if (row !== undefined) return { kind: 'accepted', rowNumber, row };
  return validate(rowNumber, value, carried);
}

/** Zod's verdict, with its issues on a rejection. */
function validate(
  rowNumber: number,
  value: unknown,
  carried: CarriedColumns,
): ParsedRecord<PartialInvoiceRow> {
  let result: ReturnType<typeof carried.schema.safeParse>;
  try {
    result = carried.schema.safeParse(value);
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
): ParsedRecord<never> {
  if (site.kind === 'row') return rejection(rowNumber, [{ path: '(row)', message: reason }]);
  const label = site.kind === 'key' ? site.key : (columnNames[site.index] ?? `cell ${site.index + 1}`);
  return rejection(rowNumber, [{ path: label, message: `${label} ${reason}` }]);
}

function rejection(rowNumber: number, issues: { path: string; message: string }[]): ParsedRecord<never> {
  const reason = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return { kind: 'rejected', rowNumber, reason, issues };
}

/** Turns split records into ParsedRecords; `undefined` means "not a data row" (the header). */
abstract class Rows {
  protected abstract readonly decoder: RowDecoder;
  abstract toParsed(
    record: RawRecord<unknown>,
    rowNumber: number,
  ): ParsedRecord<PartialInvoiceRow> | undefined;
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
  private carried: CarriedColumns | undefined;
  constructor(
    limits: RecordLimits,
    private readonly rule: ColumnRule,
  ) {
    super();
    this.decoder = new JsonlRecordSplitter(limits);
    if (rule.kind === 'all') this.carried = ALL_COLUMNS;
  }
  toParsed(record: RawRecord<unknown>, rowNumber: number): ParsedRecord<PartialInvoiceRow> {
    if (record.kind === 'malformed') return defect(rowNumber, record.site, record.reason);
    return accept(rowNumber, record.value, this.carried ?? this.columnsFrom(record.value));
  }
  /**
   * A JSON Lines batch has no header: its first object row says which columns it carries (plus
   * `invoiceId`, always required), and every later row is held to the same columns.
   */
  private columnsFrom(value: unknown): CarriedColumns {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return ALL_COLUMNS;
    const carried = new CarriedColumns(carriedOf([...Object.keys(value), 'invoiceId']));
    this.carried = carried;
    if (this.rule.kind === 'present') this.rule.onColumns(carried.columns);
    return carried;
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
  private carried = ALL_COLUMNS;

  constructor(
    limits: RecordLimits,
    private readonly rule: ColumnRule,
  ) {
    super();
    this.decoder = new CsvRecordSplitter(limits);
  }

  toParsed(record: RawRecord<unknown>, rowNumber: number): ParsedRecord<PartialInvoiceRow> | undefined {
    if (!this.positions) {
      this.readHeader(record as RawRecord<string[]>);
      return undefined;
    }
    if (record.kind === 'malformed') return defect(rowNumber, record.site, record.reason, this.names);
    const cells = record.value as string[];
    if (cells.length !== this.headerWidth) return rejection(rowNumber, this.widthIssues(cells.length));
    const positions = this.positions;
    const { columns } = this.carried;
    const row = this.carried.all
      ? acceptedRow(cells, positions)
      : acceptedPartialRow(cells, columns, positions);
    if (row !== undefined) return { kind: 'accepted', rowNumber, row };
    const object: Record<string, string> = {};
    for (let k = 0; k < columns.length; k++) object[columns[k]] = cells[positions[k]];
    return validate(rowNumber, object, this.carried);
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
    const absent = INVOICE_COLUMNS.filter((c) => !seen.has(c));
    // Only a row's identity is required of a batch that may lack some models' columns.
    const missing = this.rule.kind === 'all' ? absent : absent.filter((c) => c === 'invoiceId');
    const unknown = names.filter((n) => !expected.has(n));
    if (absent.length === INVOICE_COLUMNS.length) {
      throw new BatchUnreadableError(
        `CSV has no header line: the first line has none of the columns ${INVOICE_COLUMNS.join(', ')}`,
        'bad-header',
        { details: { missing: absent, unknown: unknown.slice(0, 10) } },
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
    const carried = carriedOf(names);
    if (this.rule.kind === 'present') {
      this.carried = new CarriedColumns(carried);
      this.rule.onColumns(carried);
    }
    this.positions = this.carried.columns.map((c) => names.indexOf(c));
    this.headerWidth = names.length;
    this.names = names;
  }
}
