import { ValidationError } from '../../shared/errors';
import { INVOICE_CELL_CHECKS, type CellCheck } from '../../shared/invoices/cells';
import type { FeatureRow } from '../../shared/model/columns';

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

export type PredictRequest = { kind: 'single'; rows: FeatureRow[] } | { kind: 'batch'; rows: FeatureRow[] };

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
const KNOWN_KEYS = new Set<string>([...FEATURE_CHECKS.map(([name]) => name), 'vatRatePercent']);

/**
 * Checks rows into FeatureRows, a slice at a time, and stops collecting after a few issues so an
 * all-invalid 10,000-row batch costs no more than a valid one. The label (`vatRatePercent`) may be
 * present, so rows can be sent straight from a labelled batch; it is checked but not kept.
 */
export class RowChecker {
  readonly rows: FeatureRow[] = [];
  readonly issues: Issue[] = [];
  private truncated = false;

  constructor(private readonly kind: PredictEnvelope['kind']) {}

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
      const out: Record<string, unknown> = {};
      let valid = true;
      for (const [name, check] of FEATURE_CHECKS) {
        const result = check(record[name]);
        if (result.ok) out[name] = result.value;
        else {
          valid = false;
          this.issue(prefix ? `${prefix}.${name}` : name, withValue(result.message, record[name]));
        }
      }
      if (Object.hasOwn(record, 'vatRatePercent')) {
        const label = c.vatRatePercent(record.vatRatePercent);
        if (!label.ok) {
          valid = false;
          this.issue(prefix ? `${prefix}.vatRatePercent` : 'vatRatePercent', label.message);
        }
      }
      for (const key in record) {
        if (!KNOWN_KEYS.has(key)) {
          valid = false;
          this.issue(prefix || '(root)', unknownKey(key));
        }
      }
      if (valid) this.rows.push(out as unknown as FeatureRow);
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
export function parsePredictRequest(body: unknown): PredictRequest {
  const envelope = readPredictEnvelope(body);
  const checker = new RowChecker(envelope.kind);
  checker.add(envelope.rawRows);
  return checker.finish();
}
