import { z } from 'zod';
import { ValidationError } from '../../shared/errors';
import { INVOICE_ROW_SCHEMA } from '../../shared/invoices/schema';
import { describeIssues } from '../../shared/validation';

/** Largest batch one request may carry: bounds the memory and event-loop time a request can take. */
export const MAX_BATCH_ROWS = 10_000;

/**
 * An invoice to score. The label is optional: callers may send rows straight from a labelled
 * batch (the value is ignored for prediction). Every other field is required and checked exactly
 * as an uploaded batch row is, so the model never sees a feature it was not trained on.
 */
export const PREDICT_ROW_SCHEMA = INVOICE_ROW_SCHEMA.extend({
  vatRatePercent: INVOICE_ROW_SCHEMA.shape.vatRatePercent.optional(),
});
export type PredictRow = z.output<typeof PREDICT_ROW_SCHEMA>;

const BATCH_SCHEMA = z.strictObject({
  invoices: z
    .array(PREDICT_ROW_SCHEMA, 'expected an array of invoices')
    .min(1, 'at least one invoice is required')
    .max(MAX_BATCH_ROWS, `at most ${MAX_BATCH_ROWS} invoices per request`),
});

export type PredictRequest = { kind: 'single'; rows: [PredictRow] } | { kind: 'batch'; rows: PredictRow[] };

/**
 * Reads a /predict body: one invoice object, or `{ invoices: [...] }`. The shape is chosen by the
 * presence of `invoices` rather than by a zod union, so a bad row is reported at its own path
 * (`invoices.3.amountNet`) instead of as "no union member matched".
 */
export function parsePredictRequest(body: unknown): PredictRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError(
      'Invalid predict request: (root): expected an invoice object or { invoices: [...] }',
      [{ path: '(root)', message: 'expected an invoice object or { invoices: [...] }' }],
    );
  }
  if ('invoices' in body) {
    // Checked before zod walks the rows, so an oversized batch costs nothing to reject.
    const invoices = (body as { invoices: unknown }).invoices;
    if (Array.isArray(invoices) && invoices.length > MAX_BATCH_ROWS) {
      const message = `at most ${MAX_BATCH_ROWS} invoices per request (got ${invoices.length})`;
      throw new ValidationError(`Invalid predict request: invoices: ${message}`, [
        { path: 'invoices', message },
      ]);
    }
    return { kind: 'batch', rows: check(BATCH_SCHEMA, body).invoices };
  }
  return { kind: 'single', rows: [check(PREDICT_ROW_SCHEMA, body)] };
}

function check<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = describeIssues(result.error);
  // A 10,000-row batch can carry 100,000 issues; the first ones tell the caller what is wrong.
  const shown = issues.slice(0, 50);
  const summary = shown
    .slice(0, 5)
    .map((i) => `${i.path}: ${i.message}`)
    .join('; ');
  throw new ValidationError(`Invalid predict request: ${summary}${issues.length > 5 ? '; ...' : ''}`, shown, {
    details: { issueCount: issues.length, truncated: issues.length > shown.length },
  });
}
