import { z } from 'zod';
import type { PipelineDefinition } from './manifest';
import type { InvoiceColumnName } from './invoiceColumns';

/**
 * Which accepted batches a pipeline can train on. With several pipelines a batch is accepted when
 * any of them can use it, so one that lacks `accountCode` is accepted for the VAT model and must not
 * reach the account-code training, which would fail on its header. The batch's evaluation report
 * records the columns it carries; a batch without that record (evaluated before batches could
 * lack columns, when a missing column quarantined them) carries every column.
 */
export function columnsRead(pipeline: Pick<PipelineDefinition, 'label' | 'features'>): InvoiceColumnName[] {
  return [...new Set([pipeline.label, ...pipeline.features.map((f) => f.column)])];
}

export type BatchColumns = { kind: 'known'; columns: ReadonlySet<string> } | { kind: 'all' };

const REPORT_COLUMNS_SCHEMA = z.looseObject({ columns: z.array(z.string()).optional() });

/** The columns a batch report records; a report from before the field (or none) means every column. */
export function batchColumnsOfReport(report: unknown): BatchColumns {
  const parsed = REPORT_COLUMNS_SCHEMA.safeParse(report);
  if (!parsed.success || parsed.data.columns === undefined) return { kind: 'all' };
  return { kind: 'known', columns: new Set(parsed.data.columns) };
}

export interface TrainableBatchQuery {
  /** Accepted batch names, oldest first. */
  accepted: readonly string[];
  pipeline: Pick<PipelineDefinition, 'label' | 'features' | 'training'>;
  /** The warm-start champion's batches: the scan must reach one of them to find what came after. */
  championWindow: readonly string[] | null;
  columnsOf: (batchName: string) => Promise<BatchColumns>;
}

const READS_AT_ONCE = 8;

/**
 * The accepted batches that carry every column the pipeline reads, oldest first. Scans from the
 * newest and stops once it holds a full window and (for a warm start) has reached the champion's
 * batches, so a retrain reads a window's worth of small reports rather than every report ever.
 */
export async function trainableBatches(query: TrainableBatchQuery): Promise<string[]> {
  const needed = columnsRead(query.pipeline);
  const championBatches = new Set(query.championWindow ?? []);
  const usable: string[] = [];
  let reachedChampion = championBatches.size === 0;
  for (let end = query.accepted.length; end > 0; end -= READS_AT_ONCE) {
    const slice = query.accepted.slice(Math.max(0, end - READS_AT_ONCE), end).reverse();
    const columns = await Promise.all(slice.map((name) => query.columnsOf(name)));
    slice.forEach((name, i) => {
      const carried = columns[i];
      if (carried.kind === 'all' || needed.every((c) => carried.columns.has(c))) usable.push(name);
      if (championBatches.has(name)) reachedChampion = true;
    });
    if (reachedChampion && usable.length >= query.pipeline.training.windowBatches) break;
  }
  return usable.reverse();
}
