import { z } from 'zod';
import { INVOICE_CELL_CHECKS, type CellCheck } from './cells';

/** A zod field that runs one of the shared cell checks, so zod and the model API agree on every cell. */
function cell<T>(check: CellCheck<T>) {
  return z.unknown().transform((raw, ctx): T => {
    const result = check(raw);
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.message });
    return z.NEVER;
  });
}

const c = INVOICE_CELL_CHECKS;

/**
 * One labelled invoice row. The label is `vatRatePercent`; every other field is a feature or an
 * identifier. Strict: an extra column is an error, so a mislabelled export is caught, not ignored.
 * CSV cells arrive as strings, JSON Lines values as JSON types; the checks accept both.
 */
export const INVOICE_ROW_SCHEMA = z.strictObject({
  invoiceId: cell(c.invoiceId),
  issuedAt: cell(c.issuedAt),
  supplierId: cell(c.supplierId),
  supplierCountry: cell(c.supplierCountry),
  receiverId: cell(c.receiverId),
  accountCode: cell(c.accountCode),
  currency: cell(c.currency),
  amountNet: cell(c.amountNet),
  lineCount: cell(c.lineCount),
  reverseCharge: cell(c.reverseCharge),
  vatRatePercent: cell(c.vatRatePercent),
});

export type InvoiceRow = z.output<typeof INVOICE_ROW_SCHEMA>;

export type InvoiceColumnName = keyof InvoiceRow;

/**
 * A row of a batch that carries only some columns (the parser says which): its identity always,
 * the rest when the batch has them.
 */
export type PartialInvoiceRow = Pick<InvoiceRow, 'invoiceId'> & Partial<Omit<InvoiceRow, 'invoiceId'>>;

/** Column order of CSV batches (header required, order free, names exact). */
export const INVOICE_COLUMNS = Object.keys(INVOICE_ROW_SCHEMA.shape) as (keyof InvoiceRow)[];

/** The label as a class key: VAT rates are compared as strings so 25.5 and 24 are distinct classes. */
export function vatClassOf(row: Pick<InvoiceRow, 'vatRatePercent'>): string {
  return String(row.vatRatePercent);
}
