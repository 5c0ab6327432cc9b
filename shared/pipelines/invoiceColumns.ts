import type { InvoiceColumnName, InvoiceRow } from '../invoices/schema';
import { INVOICE_COLUMNS } from '../invoices/schema';

/**
 * What each invoice column holds, as far as a pipeline declaration cares: which feature kinds can
 * read it and whether it can be a label. `satisfies` makes a new column in the invoice schema a
 * compile error here until someone says what it is.
 */
export type ColumnType = 'identifier' | 'text' | 'number' | 'date' | 'boolean';

export const INVOICE_COLUMN_TYPES = {
  invoiceId: 'identifier',
  issuedAt: 'date',
  supplierId: 'text',
  supplierCountry: 'text',
  receiverId: 'text',
  accountCode: 'text',
  currency: 'text',
  amountNet: 'number',
  lineCount: 'number',
  reverseCharge: 'boolean',
  vatRatePercent: 'number',
} as const satisfies Record<keyof InvoiceRow, ColumnType>;

export type { InvoiceColumnName };

const KNOWN = new Set<string>(INVOICE_COLUMNS);

export function isInvoiceColumn(name: string): name is InvoiceColumnName {
  return KNOWN.has(name);
}

/** The columns a pipeline may name, in schema order (for error messages). */
export const INVOICE_COLUMN_NAMES: readonly InvoiceColumnName[] = INVOICE_COLUMNS;

/** Labels are class keys: text, numbers (a VAT rate) and flags can be, ids and dates cannot. */
export const LABEL_COLUMN_TYPES: readonly ColumnType[] = ['text', 'number', 'boolean'];
