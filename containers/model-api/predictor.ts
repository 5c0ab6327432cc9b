import type { FeatureRow } from '../../shared/model/columns';
import { encodeRows } from '../../shared/model/features';
import { argmaxRows, predictProba, type Forest } from '../../shared/model/randomForest';
import type { TrainedModel } from '../../shared/model/trainedModel';
import {
  DeclaredColumns,
  DeclaredFeatureEncoder,
  type EncodableRow,
} from '../../shared/pipelines/featureEncoding';
import { INVOICE_COLUMN_TYPES, type InvoiceColumnName } from '../../shared/pipelines/invoiceColumns';
import type { DeclaredPredictor } from '../../shared/pipelines/multiScoring';

/** A single-model (VAT-rate) artifact's forest with its encoder. */
export type ServedModel = Pick<TrainedModel, 'encoder' | 'forest'>;

/** What the API can serve: a single-model artifact or a declared pipeline's (its own encoding inside). */
export type AnyServedModel = ServedModel | DeclaredPredictor;

/**
 * How the API reads rows for a model, decided once at load: the single model's fixed VAT-rate
 * columns, or the columns the declared model's own declaration names.
 */
export type ServingPath =
  | { kind: 'single-model'; model: ServedModel; label: 'vatRatePercent' }
  | { kind: 'declared'; model: DeclaredPredictor; label: InvoiceColumnName };

export function servingPath(model: AnyServedModel): ServingPath {
  return model.encoder instanceof DeclaredFeatureEncoder
    ? { kind: 'declared', model: model as DeclaredPredictor, label: model.encoder.declaration.label }
    : { kind: 'single-model', model: model as ServedModel, label: 'vatRatePercent' };
}

/** A single-model prediction (the declared API keys it by its own label column). */
export interface Prediction {
  vatRatePercent: number;
  /** Soft-vote probability of the predicted rate (0-1). */
  probability: number;
}

/**
 * The first `trees` trees of the forest (all when `trees` is null or not smaller). A forest's
 * trees are independent draws, so a prefix is itself a smaller forest; the planner picks the
 * smallest prefix whose held-out accuracy is within its allowance.
 */
export function withTreePrefix<M extends { forest: Forest }>(model: M, trees: number | null): M {
  if (trees === null || trees >= model.forest.trees.length) return model;
  return { ...model, forest: { ...model.forest, trees: model.forest.trees.slice(0, trees) } };
}

/**
 * Predictions of a chunk of rows as typed arrays: the class index per row and its probability.
 * This skips shared/model's predictRows on purpose: that builds a per-class probability record
 * for every row, which the API does not return and which costs more than the forest walk.
 */
export interface PredictedChunk {
  classIndex: Uint8Array;
  probability: Float32Array;
}

export function predictChunk(model: ServedModel, rows: readonly FeatureRow[]): PredictedChunk {
  const encoded = encodeRows(model.encoder, rows);
  return chunkFromProbabilities(model.forest, predictProba(model.forest, encoded.bins, encoded.rows));
}

/** A declared model's chunk: the rows read with the model's own declaration and encoder state. */
export function predictDeclaredChunk(
  model: DeclaredPredictor,
  rows: readonly EncodableRow[],
): PredictedChunk {
  const columns = new DeclaredColumns(model.encoder.declaration);
  for (const row of rows) columns.push(row);
  const encoded = model.encoder.encode(columns);
  return chunkFromProbabilities(model.forest, predictProba(model.forest, encoded.bins, encoded.rows));
}

export function predictPathChunk(path: ServingPath, rows: readonly EncodableRow[]): PredictedChunk {
  return path.kind === 'declared'
    ? predictDeclaredChunk(path.model, rows)
    : predictChunk(path.model, rows as readonly FeatureRow[]);
}

function chunkFromProbabilities(forest: Forest, probabilities: Float32Array): PredictedChunk {
  const classCount = forest.classes.length;
  const classIndex = argmaxRows(probabilities, classCount);
  const probability = new Float32Array(classIndex.length);
  for (let r = 0; r < classIndex.length; r++) probability[r] = probabilities[r * classCount + classIndex[r]];
  return { classIndex, probability };
}

/** Float32 sums print as 0.8399999737739563; six decimals is more than a vote of ≤1000 trees resolves. */
function roundedProbability(p: number): number {
  return Math.round(p * 1e6) / 1e6;
}

/**
 * Writes predictions straight to JSON text: for a 10,000-row answer this is several times faster
 * than building 10,000 objects and stringifying them. Each prediction is keyed by the model's label
 * column (`vatRatePercent`, `accountCode`, ...) and typed as that column is in a batch.
 */
export class PredictionWriter {
  private readonly parts: string[] = [];
  private count = 0;
  /** `{"<label>":<class as JSON>,"probability":` per class, built once. */
  private readonly heads: string[];

  constructor(model: AnyServedModel | ServingPath) {
    const path = 'kind' in model ? model : servingPath(model);
    const key = JSON.stringify(path.label);
    const type = INVOICE_COLUMN_TYPES[path.label];
    this.heads = path.model.forest.classes.map((c) => {
      const value = type === 'number' ? String(Number(c)) : type === 'boolean' ? c : JSON.stringify(c);
      return `{${key}:${value},"probability":`;
    });
  }

  append(chunk: PredictedChunk): void {
    const { classIndex, probability } = chunk;
    let text = '';
    for (let r = 0; r < classIndex.length; r++) {
      text += `${this.count++ === 0 ? '' : ','}${this.heads[classIndex[r]]}${roundedProbability(probability[r])}}`;
    }
    this.parts.push(text);
  }

  get rows(): number {
    return this.count;
  }

  json(modelVersion: string): string {
    return `{"modelVersion":${JSON.stringify(modelVersion)},"predictions":[${this.parts.join('')}]}`;
  }
}

/** All rows at once, as objects (tests and the in-process benchmark split). */
export function predictInvoices(model: ServedModel, rows: readonly FeatureRow[]): Prediction[] {
  const { classIndex, probability } = predictChunk(model, rows);
  const rates = model.forest.classes.map(Number);
  return Array.from(classIndex, (k, r) => ({
    vatRatePercent: rates[k],
    probability: roundedProbability(probability[r]),
  }));
}
