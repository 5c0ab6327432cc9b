import type { InvoiceRow } from '../../../shared/invoices/schema';
import { INVOICE_COLUMNS } from '../../../shared/invoices/schema';
import { mulberry32 } from '../../../shared/model/random';
import { trainFromRows } from '../../../shared/model/training';
import type { ServingModel } from '../../../containers/model-api/server';

/**
 * Small labelled batches with a learnable rule: foreign EU suppliers are reverse-charged (0 %),
 * account 4100 is food (14 %), everything else standard (24 %). Seeded, so every run sees the same rows.
 */
export function invoiceRows(count: number, seed: number, idPrefix = `s${seed}`): InvoiceRow[] {
  const random = mulberry32(seed);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)];
  return Array.from({ length: count }, (_, i) => {
    const supplierCountry = pick(['FI', 'FI', 'FI', 'DE', 'SE'] as const);
    const accountCode = pick(['4000', '4100', '4200'] as const);
    const foreign = supplierCountry !== 'FI';
    return {
      invoiceId: `${idPrefix}-${i}`,
      issuedAt: `2024-03-${String(1 + (i % 28)).padStart(2, '0')}`,
      supplierId: `sup-${supplierCountry}-${Math.floor(random() * 20)}`,
      supplierCountry,
      receiverId: `rec-${Math.floor(random() * 5)}`,
      accountCode,
      currency: supplierCountry === 'SE' ? 'SEK' : 'EUR',
      amountNet: Math.round(random() * 500_000) / 100,
      lineCount: 1 + Math.floor(random() * 9),
      reverseCharge: foreign,
      vatRatePercent: foreign ? 0 : accountCode === '4100' ? 14 : 24,
    };
  });
}

/** The rows as a CSV batch, header first, in the column order uploads use. */
export function toCsv(rows: readonly InvoiceRow[]): string {
  const lines = rows.map((row) => INVOICE_COLUMNS.map((column) => String(row[column])).join(','));
  return `${INVOICE_COLUMNS.join(',')}\n${lines.join('\n')}\n`;
}

/** A few-tree model trained in-process, for serving tests, with its artifact text. */
export async function smallServingModel(versionId = 'test-v1'): Promise<ServingModel & { artifact: string }> {
  const result = await trainFromRows(invoiceRows(600, 7), {
    trees: 8,
    maxFeatures: 'all',
    minSamplesLeaf: 1,
    maxDepth: 12,
    seed: 3,
    threads: 1,
    modelName: 'vat-rate',
    versionId,
    dataWindow: ['week-1.csv'],
  });
  return { model: result.model, metadata: result.metadata, artifact: result.artifact };
}
