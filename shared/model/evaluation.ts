import { parseInvoiceBatchChunks } from '../invoices/parser';
import type { InvoiceRow } from '../invoices/schema';
import { CATEGORICAL_FIELDS, InvoiceColumns, type CategoricalField } from './columns';
import { ConfusionMatrix } from './metrics';
import { classifyColumns, type Predictor } from './trainedModel';

export interface EvaluationReport {
  accuracy: number;
  macroF1: number;
  perClass: Record<string, { recall: number; precision: number; f1: number; support: number }>;
  /** matrix[actual][predicted]. */
  confusion: { classes: string[]; matrix: number[][] };
  rowsRead: number;
  rowsAccepted: number;
  rowsRejected: number;
  /** Drift signal: share of accepted rows whose category the model never saw in training. */
  featureMix: { unseenShare: Record<CategoricalField, number> };
}

const DEFAULT_CHUNK_ROWS = 4096;

/**
 * Scores rows a chunk at a time: rows are gathered into a small column chunk, encoded, predicted
 * tree-major and folded into a confusion matrix, so memory stays flat whatever the batch size.
 */
export class ChunkedEvaluator {
  private chunk = new InvoiceColumns();
  private readonly confusion = new ConfusionMatrix();
  private readonly unseen = Object.fromEntries(CATEGORICAL_FIELDS.map((f) => [f, 0])) as Record<
    CategoricalField,
    number
  >;
  private accepted = 0;

  constructor(
    private readonly model: Predictor,
    private readonly chunkRows = DEFAULT_CHUNK_ROWS,
  ) {
    // The model's classes appear in the matrix even when a batch lacks some of them.
    for (const c of model.forest.classes) this.confusion.add(c, c, 0);
  }

  add(row: InvoiceRow): void {
    this.chunk.pushLabelled(row);
    this.accepted++;
    if (this.chunk.length >= this.chunkRows) this.flush();
  }

  /** Scores rows already gathered as labelled columns (the trainer's holdout). */
  addColumns(columns: InvoiceColumns): void {
    if (columns.length === 0) return;
    this.flushColumns(columns);
    this.accepted += columns.length;
  }

  private flush(): void {
    if (this.chunk.length === 0) return;
    this.flushColumns(this.chunk);
    this.chunk = new InvoiceColumns();
  }

  private flushColumns(columns: InvoiceColumns): void {
    const { predicted, encoded } = classifyColumns(this.model, columns);
    this.confusion.addIndexed(
      columns.labelDictionary.values,
      columns.labelIds,
      this.model.forest.classes,
      predicted,
    );
    for (const field of CATEGORICAL_FIELDS) this.unseen[field] += encoded.unseenRows[field];
  }

  report(rowsRejected = 0): EvaluationReport {
    this.flush();
    const metrics = this.confusion.metrics();
    const unseenShare = {} as Record<CategoricalField, number>;
    for (const field of CATEGORICAL_FIELDS) {
      unseenShare[field] = this.accepted > 0 ? this.unseen[field] / this.accepted : 0;
    }
    return {
      accuracy: metrics.accuracy,
      macroF1: metrics.macroF1,
      perClass: metrics.perClass,
      confusion: metrics.confusion,
      rowsRead: this.accepted + rowsRejected,
      rowsAccepted: this.accepted,
      rowsRejected,
      featureMix: { unseenShare },
    };
  }
}

/** Streams a batch file: parse → encode → predict in chunks → confusion matrix. */
export async function evaluateOnBatch(
  model: Predictor,
  source: NodeJS.ReadableStream,
  info: { fileName: string },
  options: { chunkRows?: number } = {},
): Promise<EvaluationReport> {
  const evaluator = new ChunkedEvaluator(model, options.chunkRows);
  let rejected = 0;
  for await (const items of parseInvoiceBatchChunks(source, { fileName: info.fileName })) {
    for (const item of items) {
      if (item.kind === 'accepted') evaluator.add(item.row);
      else rejected++;
    }
  }
  return evaluator.report(rejected);
}

export function evaluateRows(model: Predictor, rows: Iterable<InvoiceRow>): EvaluationReport {
  const evaluator = new ChunkedEvaluator(model);
  for (const row of rows) evaluator.add(row);
  return evaluator.report();
}
