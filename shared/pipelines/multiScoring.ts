import type { ParsedRecord } from '../invoices/parser';
import { INVOICE_COLUMNS, type PartialInvoiceRow } from '../invoices/schema';
import { ConfusionMatrix } from '../model/metrics';
import { predictClasses, type Forest } from '../model/randomForest';
import type { TrainedModel } from '../model/trainedModel';
import { DeclaredColumns, DeclaredFeatureEncoder, type EncodingDeclaration } from './featureEncoding';
import type { InvoiceColumnName } from './invoiceColumns';

/**
 * One upload, every model: the batch is parsed once and each chunk of rows is scored by every
 * pipeline in turn, so the rows held at once are one chunk whatever the number of pipelines (the
 * batch is never held once per model). Each pipeline reads the chunk with its champion's own
 * encoding, so a champion trained under an older declaration keeps reading rows its way.
 */

/** A champion ready to score: its encoder (with the declaration it was trained under) and trees. */
export interface DeclaredPredictor {
  readonly encoder: DeclaredFeatureEncoder;
  readonly forest: Forest;
}

/** A champion of the single-model format, read through the legacy adapter. */
export function legacyPredictor(model: Pick<TrainedModel, 'encoder' | 'forest'>): DeclaredPredictor {
  return { encoder: DeclaredFeatureEncoder.fromLegacyState(model.encoder.toJSON()), forest: model.forest };
}

export interface PipelineScore {
  accuracy: number;
  macroF1: number;
  perClass: Record<string, { recall: number; precision: number; f1: number; support: number }>;
  confusion: { classes: string[]; matrix: number[][] };
  rowsScored: number;
  encodingVersion: string;
  /** Share of rows per categorical column whose value the champion never saw (a drift signal). */
  unseenShare: Partial<Record<InvoiceColumnName, number>>;
}

export type PipelineOutcome =
  | { kind: 'scored'; pipeline: string; score: PipelineScore }
  /** The batch cannot be judged for this pipeline (not a bad batch: it stays accepted for the others). */
  | { kind: 'skipped'; pipeline: string; reason: string }
  /** No champion yet: the batch is kept for the first training. */
  | { kind: 'no-champion'; pipeline: string };

export interface ScoringEntry {
  readonly pipeline: { readonly name: string } & EncodingDeclaration;
  readonly champion: DeclaredPredictor | null;
}

const DEFAULT_CHUNK_ROWS = 4096;

interface Active {
  name: string;
  predictor: DeclaredPredictor;
  confusion: ConfusionMatrix;
  unseen: Map<InvoiceColumnName, number>;
  rows: number;
}

export class MultiPipelineScorer {
  private chunk: PartialInvoiceRow[] = [];
  private readonly active: Active[] = [];
  private readonly settled: PipelineOutcome[] = [];
  private readonly order: string[];
  /** Most rows ever held at once (the memory bound: at most one chunk). */
  peakRowsHeld = 0;

  /**
   * `batchColumns` are the columns the batch carries; a pipeline whose champion reads, or whose
   * label is, a column the batch lacks is skipped with that reason.
   */
  constructor(
    entries: readonly ScoringEntry[],
    batchColumns: readonly string[] = INVOICE_COLUMNS,
    private readonly chunkRows = DEFAULT_CHUNK_ROWS,
  ) {
    this.order = entries.map((e) => e.pipeline.name);
    const carried = new Set(batchColumns);
    for (const { pipeline, champion } of entries) {
      const declaration = champion?.encoder.declaration ?? pipeline;
      if (!carried.has(declaration.label)) {
        this.settled.push({
          kind: 'skipped',
          pipeline: pipeline.name,
          reason: `batch has no ${declaration.label} column (the label)`,
        });
        continue;
      }
      const missing = declaration.features.map((f) => f.column).filter((c) => !carried.has(c));
      if (missing.length > 0) {
        this.settled.push({
          kind: 'skipped',
          pipeline: pipeline.name,
          reason: `batch lacks feature column(s) ${missing.join(', ')}`,
        });
        continue;
      }
      if (!champion) {
        this.settled.push({ kind: 'no-champion', pipeline: pipeline.name });
        continue;
      }
      const confusion = new ConfusionMatrix();
      // The champion's classes appear in the matrix even when a batch lacks some of them.
      for (const c of champion.forest.classes) confusion.add(c, c, 0);
      this.active.push({ name: pipeline.name, predictor: champion, confusion, unseen: new Map(), rows: 0 });
    }
  }

  /** The pipelines that will score rows; when empty the caller need not stream the batch for scoring. */
  get scoring(): readonly string[] {
    return this.active.map((a) => a.name);
  }

  /** A row carrying at least the batch's columns (the constructor's `batchColumns`). */
  add(row: PartialInvoiceRow): void {
    if (this.active.length === 0) return;
    this.chunk.push(row);
    if (this.chunk.length > this.peakRowsHeld) this.peakRowsHeld = this.chunk.length;
    if (this.chunk.length >= this.chunkRows) this.flush();
  }

  private flush(): void {
    if (this.chunk.length === 0) return;
    for (const pipeline of this.active) {
      const { encoder, forest } = pipeline.predictor;
      const columns = new DeclaredColumns(encoder.declaration);
      for (const row of this.chunk) columns.push(row, true);
      const encoded = encoder.encode(columns);
      const predicted = predictClasses(forest, encoded.bins, encoded.rows);
      pipeline.confusion.addIndexed(
        columns.labelDictionary.values,
        columns.labelIds,
        forest.classes,
        predicted,
      );
      for (const [column, count] of Object.entries(encoded.unseenRows) as [InvoiceColumnName, number][]) {
        pipeline.unseen.set(column, (pipeline.unseen.get(column) ?? 0) + count);
      }
      pipeline.rows += columns.length;
    }
    this.chunk = [];
  }

  /** One outcome per pipeline, in the order the entries were given. */
  finish(): PipelineOutcome[] {
    this.flush();
    const outcomes = new Map<string, PipelineOutcome>(this.settled.map((o) => [o.pipeline, o]));
    for (const pipeline of this.active) {
      const metrics = pipeline.confusion.metrics();
      const unseenShare: Partial<Record<InvoiceColumnName, number>> = {};
      for (const [column, count] of pipeline.unseen)
        unseenShare[column] = pipeline.rows > 0 ? count / pipeline.rows : 0;
      outcomes.set(pipeline.name, {
        kind: 'scored',
        pipeline: pipeline.name,
        score: {
          accuracy: metrics.accuracy,
          macroF1: metrics.macroF1,
          perClass: metrics.perClass,
          confusion: metrics.confusion,
          rowsScored: pipeline.rows,
          encodingVersion: pipeline.predictor.encoder.version,
          unseenShare,
        },
      });
    }
    return this.order.map((name) => outcomes.get(name) as PipelineOutcome);
  }
}

/** Scores one parsed batch (rejected rows are counted, never scored) for every pipeline. */
export async function scoreBatchForPipelines(
  records: AsyncIterable<ParsedRecord<PartialInvoiceRow>> | Iterable<ParsedRecord<PartialInvoiceRow>>,
  entries: readonly ScoringEntry[],
  options: { batchColumns?: readonly string[]; chunkRows?: number } = {},
): Promise<{
  outcomes: PipelineOutcome[];
  rowsAccepted: number;
  rowsRejected: number;
  peakRowsHeld: number;
}> {
  const scorer = new MultiPipelineScorer(entries, options.batchColumns, options.chunkRows);
  let rowsAccepted = 0;
  let rowsRejected = 0;
  for await (const record of records) {
    if (record.kind === 'accepted') {
      rowsAccepted++;
      scorer.add(record.row);
    } else rowsRejected++;
  }
  return { outcomes: scorer.finish(), rowsAccepted, rowsRejected, peakRowsHeld: scorer.peakRowsHeld };
}
