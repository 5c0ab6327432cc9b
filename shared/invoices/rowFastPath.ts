import { INVOICE_CELL_CHECKS } from './cells';
import { INVOICE_COLUMNS, type InvoiceColumnName, type InvoiceRow, type PartialInvoiceRow } from './schema';

/**
 * The row schema without zod's per-row machinery, for the rows that pass it (nearly all of a real
 * batch): the same cell checks INVOICE_ROW_SCHEMA runs, called directly, building the same object
 * (same keys, same order, same values). It only ever accepts: on any failing cell it returns
 * undefined and the caller asks zod, so every rejection keeps zod's exact issues. A test holds it
 * equal to the schema on a hostile corpus.
 */

const c = INVOICE_CELL_CHECKS;
const EXPECTED_ORDER = [
  'invoiceId',
  'issuedAt',
  'supplierId',
  'supplierCountry',
  'receiverId',
  'accountCode',
  'currency',
  'amountNet',
  'lineCount',
  'reverseCharge',
  'vatRatePercent',
] as const;
// The positional reads below follow the schema's key order; a reordered schema must fail loudly.
if (INVOICE_COLUMNS.join() !== EXPECTED_ORDER.join()) {
  throw new TypeError(`rowFastPath expects the columns ${EXPECTED_ORDER.join()}`);
}

/** A row from its cells: `cells[positions[k]]` is the cell of schema column k. */
export function acceptedRow(cells: readonly unknown[], positions: readonly number[]): InvoiceRow | undefined {
  const invoiceId = c.invoiceId(cells[positions[0]]);
  if (!invoiceId.ok) return undefined;
  const issuedAt = c.issuedAt(cells[positions[1]]);
  if (!issuedAt.ok) return undefined;
  const supplierId = c.supplierId(cells[positions[2]]);
  if (!supplierId.ok) return undefined;
  const supplierCountry = c.supplierCountry(cells[positions[3]]);
  if (!supplierCountry.ok) return undefined;
  const receiverId = c.receiverId(cells[positions[4]]);
  if (!receiverId.ok) return undefined;
  const accountCode = c.accountCode(cells[positions[5]]);
  if (!accountCode.ok) return undefined;
  const currency = c.currency(cells[positions[6]]);
  if (!currency.ok) return undefined;
  const amountNet = c.amountNet(cells[positions[7]]);
  if (!amountNet.ok) return undefined;
  const lineCount = c.lineCount(cells[positions[8]]);
  if (!lineCount.ok) return undefined;
  const reverseCharge = c.reverseCharge(cells[positions[9]]);
  if (!reverseCharge.ok) return undefined;
  const vatRatePercent = c.vatRatePercent(cells[positions[10]]);
  if (!vatRatePercent.ok) return undefined;
  return {
    invoiceId: invoiceId.value,
    issuedAt: issuedAt.value,
    supplierId: supplierId.value,
    supplierCountry: supplierCountry.value,
    receiverId: receiverId.value,
    accountCode: accountCode.value,
    currency: currency.value,
    amountNet: amountNet.value,
    lineCount: lineCount.value,
    reverseCharge: reverseCharge.value,
    vatRatePercent: vatRatePercent.value,
  };
}

const COLUMN_SET: ReadonlySet<string> = new Set(INVOICE_COLUMNS);
const IDENTITY = INVOICE_COLUMNS.map((_, k) => k);

/**
 * A JSON Lines value: only a plain object whose own keys are exactly the schema's columns takes the
 * fast path (anything else, an extra or odd key such as `__proto__` included, goes to zod).
 */
export function acceptedJsonRow(value: unknown): InvoiceRow | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  if (Object.getPrototypeOf(value) !== Object.prototype) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== INVOICE_COLUMNS.length) return undefined;
  for (const key of keys) if (!COLUMN_SET.has(key)) return undefined;
  const record = value as Record<string, unknown>;
  return acceptedRow(
    INVOICE_COLUMNS.map((column) => record[column]),
    IDENTITY,
  );
}

/**
 * A row of a batch carrying only `columns` (schema order): `cells[positions[k]]` is the cell of
 * `columns[k]`. The same checks, through a loop rather than unrolled (such batches are the rare
 * case); undefined on any failing cell, so zod gives the issues.
 */
export function acceptedPartialRow(
  cells: readonly unknown[],
  columns: readonly InvoiceColumnName[],
  positions: readonly number[],
): PartialInvoiceRow | undefined {
  const row: Record<string, unknown> = {};
  for (let k = 0; k < columns.length; k++) {
    const result = (c[columns[k]] as (raw: unknown) => { ok: boolean; value?: unknown })(cells[positions[k]]);
    if (!result.ok) return undefined;
    row[columns[k]] = result.value;
  }
  return row as PartialInvoiceRow;
}
