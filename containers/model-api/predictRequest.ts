import { ValidationError } from '../../shared/errors';
import { INVOICE_CELL_CHECKS, type CellCheck } from '../../shared/invoices/cells';
import type { FeatureRow } from '../../shared/model/columns';
import type { EncodableRow } from '../../shared/pipelines/featureEncoding';
import { INVOICE_COLUMN_NAMES } from '../../shared/pipelines/invoiceColumns';
import type { ServingPath } from './predictor';

/** Largest batch one request may carry: bounds the memory and event-loop time a request can take. */
export const MAX_BATCH_ROWS = 10_000;

/** Validation stops here: a caller needs the first few problems, not 100,000 of them. */
export const MAX_REPORTED_ISSUES = 5;

/** Keys and values are quoted in messages up to this length, so a 2 MB key is not echoed back. */
const MAX_QUOTED_CHARS = 24;

export interface Issue {
  path: string;
  message: string;
}

/** Rows as checked: every column the model reads (a single-model row is a whole FeatureRow). */
export type PredictRequest<Row = EncodableRow> = { kind: 'single' | 'batch'; rows: Row[] };

/** What the envelope holds before its rows are checked. */
export type PredictEnvelope = { kind: 'single' | 'batch'; rawRows: readonly unknown[] };

/** A key or value as a caller may see it in an error: JSON-quoted and cut to a short prefix. */
export function quoted(value: unknown): string {
  let text: string;
  if (typeof value === 'string') {
    text = value.length > MAX_QUOTED_CHARS ? `${value.slice(0, MAX_QUOTED_CHARS)}…` : value;
    return JSON.stringify(text);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : typeof value;
}

export function invalid(issues: Issue[], truncated: boolean): ValidationError {
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return new ValidationError(`Invalid predict request: ${summary}${truncated ? '; ...' : ''}`, issues, {
    details: { truncated },
  });
}

/**
 * Reads a /predict body's shape: one invoice object, or `{ invoices: [...] }` with nothing else.
 * The rows themselves are checked by RowChecker, in chunks the server can interleave with other work.
 */
export function readPredictEnvelope(body: unknown): PredictEnvelope {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid([{ path: '(root)', message: 'expected an invoice object or { invoices: [...] }' }], false);
  }
  if (!Object.hasOwn(body, 'invoices')) return { kind: 'single', rawRows: [body] };
  const extra: Issue[] = [];
  for (const key in body) {
    if (key !== 'invoices' && extra.length < MAX_REPORTED_ISSUES) {
      extra.push({ path: '(root)', message: `unknown key ${quoted(key)} beside invoices` });
    }
  }
  if (extra.length > 0) throw invalid(extra, false);
  const invoices = (body as { invoices: unknown }).invoices;
  if (!Array.isArray(invoices)) {
    throw invalid(
      [{ path: 'invoices', message: `expected an array of invoices, got ${quoted(invoices)}` }],
      false,
    );
  }
  if (invoices.length === 0) throw noRows();
  if (invoices.length > MAX_BATCH_ROWS) throw tooManyRows(invoices.length);
  return { kind: 'batch', rawRows: invoices };
}

export function tooManyRows(count: number): ValidationError {
  const message = `at most ${MAX_BATCH_ROWS} invoices per request (got ${count})`;
  return invalid([{ path: 'invoices', message }], false);
}

export function noRows(): ValidationError {
  return invalid([{ path: 'invoices', message: 'at least one invoice is required' }], false);
}

const c = INVOICE_CELL_CHECKS;

/** The feature columns, checked with exactly the cell checks an uploaded batch uses. */
const FEATURE_CHECKS: readonly [keyof FeatureRow, CellCheck<unknown>][] = [
  ['invoiceId', c.invoiceId],
  ['issuedAt', c.issuedAt],
  ['supplierId', c.supplierId],
  ['supplierCountry', c.supplierCountry],
  ['receiverId', c.receiverId],
  ['accountCode', c.accountCode],
  ['currency', c.currency],
  ['amountNet', c.amountNet],
  ['lineCount', c.lineCount],
  ['reverseCharge', c.reverseCharge],
];

/**
 * The columns a model's rows must and may carry. Every check is the batch parser's own cell check
 * (the same functions the zod row schema runs), so a cell means the same in a request as in an
 * upload, without a zod object per row on the hot path.
 */
export interface RowSpec {
  /** Read by the model: missing or bad is a 400 naming the column. */
  required: readonly (readonly [string, CellCheck<unknown>])[];
  /** The label: may be sent (rows straight from a labelled batch), checked, never kept. */
  label: readonly [string, CellCheck<unknown>];
  /** Keys a row may carry at all; any other key is an issue. */
  known: ReadonlySet<string>;
}

/** The single-model API as it has always been: every feature column and the id, label optional. */
export const SINGLE_MODEL_ROWS: RowSpec = {
  required: FEATURE_CHECKS,
  label: ['vatRatePercent', c.vatRatePercent],
  known: new Set<string>([...FEATURE_CHECKS.map(([name]) => name), 'vatRatePercent']),
};

/**
 * A declared model needs only the columns its own declaration reads; other invoice columns may be
 * sent (one invoice can go to every model's API) and are neither read nor checked. The id is not
 * read for predictions (it only folds training rows), so it is not required either.
 */
export function rowSpecFor(path: ServingPath): RowSpec {
  if (path.kind === 'single-model') return SINGLE_MODEL_ROWS;
  const columns = [...new Set(path.model.encoder.declaration.features.map((f) => f.column))];
  return {
    required: columns.map((column) => [column, c[column] as CellCheck<unknown>] as const),
    label: [path.label, c[path.label] as CellCheck<unknown>],
    known: new Set<string>(INVOICE_COLUMN_NAMES),
  };
}

/**
 * Checks rows against a RowSpec, a slice at a time, and stops collecting after a few issues so an
 * all-invalid 10,000-row batch costs no more than a valid one.
 */
export class RowChecker {
  readonly rows: EncodableRow[] = [];
  readonly issues: Issue[] = [];
  private truncated = false;

  constructor(
    private readonly kind: PredictEnvelope['kind'],
    private readonly spec: RowSpec = SINGLE_MODEL_ROWS,
  ) {}

  get done(): boolean {
    return this.issues.length >= MAX_REPORTED_ISSUES;
  }

  /** Checks `raw`, whose first row is row `firstIndex` of the request; false once enough issues are in. */
  add(raw: readonly unknown[], firstIndex = 0): boolean {
    const batch = this.kind === 'batch';
    for (let k = 0; k < raw.length; k++) {
      if (this.done) {
        this.truncated = true;
        return false;
      }
      const prefix = batch ? `invoices.${firstIndex + k}` : '';
      const row = raw[k];
      if (typeof row !== 'object' || row === null || Array.isArray(row)) {
        this.issue(prefix || '(root)', `expected an invoice object, got ${quoted(row)}`);
        continue;
      }
      const record = row as Record<string, unknown>;
      const { required, label: labelCheck, known } = this.spec;
      // The id is only read to fold training rows; a declared model's row may come without one.
      const out: Record<string, unknown> = { invoiceId: '' };
      let valid = true;
      for (const [name, check] of required) {
        const result = check(record[name]);
        if (result.ok) out[name] = result.value;
        else {
          valid = false;
          this.issue(prefix ? `${prefix}.${name}` : name, withValue(result.message, record[name]));
        }
      }
      const [labelName, checkLabel] = labelCheck;
      if (Object.hasOwn(record, labelName)) {
        const label = checkLabel(record[labelName]);
        if (!label.ok) {
          valid = false;
          this.issue(prefix ? `${prefix}.${labelName}` : labelName, label.message);
        }
      }
      for (const key in record) {
        if (!known.has(key)) {
          valid = false;
          this.issue(prefix || '(root)', unknownKey(key));
        }
      }
      if (valid) this.rows.push(out as unknown as EncodableRow);
    }
    return !this.done;
  }

  /** Throws the collected issues, if any. */
  finish(): PredictRequest {
    if (this.issues.length > 0) {
      throw invalid(this.issues, this.truncated || this.issues.length >= MAX_REPORTED_ISSUES);
    }
    return { kind: this.kind, rows: this.rows };
  }

  private issue(path: string, message: string): void {
    if (this.issues.length < MAX_REPORTED_ISSUES) this.issues.push({ path, message });
    else this.truncated = true;
  }
}

function unknownKey(key: string): string {
  // JSON.parse makes `__proto__` an own key (harmless), but it is always an attack or a bug.
  return key === '__proto__' ? 'key "__proto__" is not allowed' : `unknown key ${quoted(key)}`;
}

function withValue(message: string, value: unknown): string {
  return value === undefined ? message : `${message} (got ${quoted(value)})`;
}

/** Reads and checks a whole body at once (tests, benchmarks; the server checks in chunks). */
export function parsePredictRequest(body: unknown): PredictRequest<FeatureRow> {
  return parseRowsFor(body, SINGLE_MODEL_ROWS) as PredictRequest<FeatureRow>;
}

/** As parsePredictRequest, for the rows of any model. */
export function parseRowsFor(body: unknown, spec: RowSpec): PredictRequest {
  const envelope = readPredictEnvelope(body);
  const checker = new RowChecker(envelope.kind, spec);
  checker.add(envelope.rawRows);
  return checker.finish();
}
