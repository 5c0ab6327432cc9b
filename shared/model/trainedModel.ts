import type { ModelMetadata } from './metadata';
import type { FeatureRow, InvoiceColumns } from './columns';
import { encodeRows, type FeatureEncoder, type EncodedMatrix } from './features';
import { argmaxRows, predictClasses, predictProba, type Forest } from './randomForest';

/** A model ready to predict: what it says about itself, how it reads rows, and its trees. */
export interface TrainedModel {
  readonly metadata: ModelMetadata;
  readonly encoder: FeatureEncoder;
  readonly forest: Forest;
}

export interface Prediction {
  vatClass: string;
  vatRatePercent: number;
  /** Soft-vote probability of the predicted class. */
  confidence: number;
  probabilities: Record<string, number>;
}

export interface ChunkPrediction {
  /** Index into model.forest.classes per row. */
  predicted: Uint8Array;
  /** rows × classes. */
  probabilities: Float32Array;
  encoded: EncodedMatrix;
}

/** The parts that predict; a model being trained has these before its metadata. */
export type Predictor = Pick<TrainedModel, 'encoder' | 'forest'>;

/** Predicts a chunk already held as columns, with its class probabilities. */
export function predictColumns(model: Predictor, columns: InvoiceColumns): ChunkPrediction {
  return predictEncoded(model, model.encoder.encodeColumns(columns));
}

/** The predicted class of each row of a chunk held as columns (the evaluator's and trainer's path). */
export function classifyColumns(
  model: Predictor,
  columns: InvoiceColumns,
): Omit<ChunkPrediction, 'probabilities'> {
  const encoded = model.encoder.encodeColumns(columns);
  return { predicted: predictClasses(model.forest, encoded.bins, encoded.rows), encoded };
}

function predictEncoded(model: Predictor, encoded: EncodedMatrix): ChunkPrediction {
  const probabilities = predictProba(model.forest, encoded.bins, encoded.rows);
  return { predicted: argmaxRows(probabilities, model.forest.classes.length), probabilities, encoded };
}

/** Predicts feature rows (no label needed), e.g. for the model API. */
export function predictRows(model: Predictor, rows: Iterable<FeatureRow>): Prediction[] {
  const { predicted, probabilities } = predictEncoded(model, encodeRows(model.encoder, rows));
  const classes = model.forest.classes;
  const K = classes.length;
  return Array.from(predicted, (k, r) => {
    const byClass: Record<string, number> = {};
    for (let c = 0; c < K; c++) byClass[classes[c]] = probabilities[r * K + c];
    return {
      vatClass: classes[k],
      vatRatePercent: Number(classes[k]),
      confidence: probabilities[r * K + k],
      probabilities: byClass,
    };
  });
}
