import type { TableClient } from '@azure/data-tables';
import { z } from 'zod';
import { parseJsonWith } from '../validation';

/**
 * One record per evaluated batch: what the champion scored on it, how the batch's feature mix
 * differs from the training window, and what was decided. The workbook's "accuracy per batch" and
 * "retrains with reason" views, the status endpoint and the report all read these.
 */
export const EVALUATION_RECORD_SCHEMA = z.object({
  modelName: z.string(),
  batchName: z.string(),
  etag: z.string(),
  correlationId: z.string(),
  evaluatedAt: z.string(),
  championVersionId: z.string().nullable(),
  championBaselineAccuracy: z.number().nullable(),
  accuracy: z.number().nullable(),
  macroF1: z.number().nullable(),
  rowsRead: z.number().int().nonnegative(),
  rowsAccepted: z.number().int().nonnegative(),
  rowsRejected: z.number().int().nonnegative(),
  drift: z.object({
    unseenSupplierShare: z.number().nullable(),
    unseenCountryShare: z.number().nullable(),
    countryMixDistance: z.number().nullable(),
    /** Share of rows labelled with a class the champion never saw (a retrain signal); absent in older records. */
    unseenLabelShare: z.number().min(0).max(1).nullable().optional(),
  }),
  decision: z.object({
    kind: z.enum(['none', 'retrainWhenGreen', 'retrainNow']),
    reason: z.string(),
    relativeDrop: z.number().nullable(),
    deadline: z.string().nullable(),
  }),
  action: z.string(),
  cpuSeconds: z.number().nonnegative(),
  wallSeconds: z.number().nonnegative(),
});
export type EvaluationRecord = z.output<typeof EVALUATION_RECORD_SCHEMA>;

export class EvaluationRecordStore {
  constructor(private readonly table: TableClient) {}

  async ensureTable(): Promise<void> {
    await this.table.createTable();
  }

  /** Upsert keyed on batch + ETag: a retried delivery rewrites the same row instead of adding one. */
  async save(record: EvaluationRecord): Promise<void> {
    const body = JSON.stringify(
      parseJsonWith(EVALUATION_RECORD_SCHEMA, JSON.stringify(record), 'evaluation record'),
    );
    await this.table.upsertEntity(
      {
        partitionKey: record.modelName,
        rowKey: `${record.evaluatedAt}_${record.correlationId}`,
        accuracy: record.accuracy ?? undefined,
        decision: record.decision.kind,
        body,
      },
      'Replace',
    );
  }

  /** Oldest first. */
  async list(
    modelName: string,
    options: { sinceIso?: string; limit?: number } = {},
  ): Promise<EvaluationRecord[]> {
    const filters = [`PartitionKey eq '${modelName.replace(/'/g, "''")}'`];
    if (options.sinceIso) filters.push(`RowKey ge '${options.sinceIso}'`);
    const out: EvaluationRecord[] = [];
    for await (const entity of this.table.listEntities<{ body: string }>({
      queryOptions: { filter: filters.join(' and ') },
    })) {
      out.push(parseJsonWith(EVALUATION_RECORD_SCHEMA, entity.body, 'evaluation record'));
    }
    out.sort((a, b) => a.evaluatedAt.localeCompare(b.evaluatedAt));
    return options.limit ? out.slice(-options.limit) : out;
  }
}
