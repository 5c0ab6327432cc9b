import type { InvoiceRow } from '../../../shared/invoices/schema';
import { INVOICE_COLUMNS } from '../../../shared/invoices/schema';
import { mulberry32 } from '../../../shared/model/random';

export const RATES = [0, 5.5, 9, 14, 24];
const COUNTRIES = ['FI', 'SE', 'DE', 'FR', 'US'];
const CURRENCIES = ['EUR', 'SEK', 'EUR', 'EUR', 'USD'];

export interface SyntheticOptions {
  rows: number;
  seed: number;
  /** Suppliers are `${supplierPrefix}${i}` for i < suppliers. */
  suppliers?: number;
  supplierPrefix?: string;
  invoicePrefix?: string;
  /** The known rule: the VAT rate of supplier i. */
  rateOfSupplier?: (supplier: number) => number;
}

/**
 * Small labelled invoice sets with a known rule (the supplier decides the VAT rate) and noise
 * features, so a test knows what a working forest must reach.
 */
export function syntheticRows(options: SyntheticOptions): InvoiceRow[] {
  const random = mulberry32(options.seed);
  const suppliers = options.suppliers ?? 40;
  const prefix = options.supplierPrefix ?? 'S';
  const rateOf = options.rateOfSupplier ?? ((s: number) => RATES[s % RATES.length]);
  const rows: InvoiceRow[] = [];
  for (let i = 0; i < options.rows; i++) {
    const supplier = Math.floor(random() * suppliers);
    const country = supplier % COUNTRIES.length;
    const day = 1 + Math.floor(random() * 28);
    rows.push({
      invoiceId: `${options.invoicePrefix ?? 'INV'}-${options.seed}-${i}`,
      issuedAt: `2024-0${1 + Math.floor(random() * 9)}-${String(day).padStart(2, '0')}`,
      supplierId: `${prefix}${supplier}`,
      supplierCountry: COUNTRIES[country],
      receiverId: `R${Math.floor(random() * 12)}`,
      accountCode: String(4000 + Math.floor(random() * 30)),
      currency: CURRENCIES[country],
      amountNet: Math.round(Math.exp(3 + 3 * random()) * 100) / 100,
      lineCount: 1 + Math.floor(random() * 9),
      reverseCharge: random() < 0.1,
      vatRatePercent: rateOf(supplier),
    });
  }
  return rows;
}

/** The same rows as a CSV batch file. */
export function toCsv(rows: InvoiceRow[]): string {
  const lines = [INVOICE_COLUMNS.join(',')];
  for (const row of rows) lines.push(INVOICE_COLUMNS.map((c) => String(row[c])).join(','));
  return `${lines.join('\n')}\n`;
}
