import { z } from 'zod';

const regionNames = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });
const currencies = new Set(Intl.supportedValuesOf('currency'));

/** ISO 3166-1 alpha-2, checked against ICU's region list (so `XX` and `ZZ` are rejected). */
export const countryCode = z
  .string()
  .regex(/^[A-Z]{2}$/, 'expected an ISO 3166 alpha-2 country code')
  // zod runs this even when the regex failed, and DisplayNames.of throws RangeError on malformed codes.
  .refine((c) => !/^[A-Z]{2}$/.test(c) || regionNames.of(c) !== undefined, 'unknown ISO 3166 country code');

/** ISO 4217, checked against ICU's currency list. */
export const currencyCode = z
  .string()
  .regex(/^[A-Z]{3}$/, 'expected an ISO 4217 currency code')
  .refine((c) => currencies.has(c), 'unknown ISO 4217 currency code');

const isoDate = z.iso.date('expected an ISO date (YYYY-MM-DD)');
const identifier = z.string().trim().min(1, 'required').max(64, 'at most 64 characters');

/** CSV cells arrive as strings, JSON Lines values as JSON types: accept both, store one. */
const numberCell = z.union([z.number(), z.string().trim().min(1, 'required')]).pipe(z.coerce.number());
const booleanCell = z
  .union([z.boolean(), z.enum(['true', 'false', 'TRUE', 'FALSE', '1', '0'])])
  .transform((v) => v === true || v === 'true' || v === 'TRUE' || v === '1');

/**
 * One labelled invoice row. The label is `vatRatePercent`; every other field is a feature or an
 * identifier. Strict: an extra column is an error, so a mislabelled export is caught, not ignored.
 */
export const INVOICE_ROW_SCHEMA = z.strictObject({
  invoiceId: identifier,
  issuedAt: isoDate,
  supplierId: identifier,
  supplierCountry: countryCode,
  receiverId: identifier,
  accountCode: z
    .string()
    .trim()
    .regex(/^\d{3,6}$/, 'expected a 3-6 digit account code'),
  currency: currencyCode,
  amountNet: numberCell.pipe(z.number().finite().gte(-1e9).lte(1e9)),
  lineCount: numberCell.pipe(
    z.number().int('expected a whole number').min(1, 'must be at least 1').max(10000),
  ),
  reverseCharge: booleanCell,
  vatRatePercent: numberCell.pipe(z.number().min(0).max(100)),
});

export type InvoiceRow = z.output<typeof INVOICE_ROW_SCHEMA>;

/** Column order of CSV batches (header required, order free, names exact). */
export const INVOICE_COLUMNS = Object.keys(INVOICE_ROW_SCHEMA.shape) as (keyof InvoiceRow)[];

/** The label as a class key: VAT rates are compared as strings so 25.5 and 24 are distinct classes. */
export function vatClassOf(row: Pick<InvoiceRow, 'vatRatePercent'>): string {
  return String(row.vatRatePercent);
}
