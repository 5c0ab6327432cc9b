import type { FeatureRow } from '../../shared/model/columns';
import { encodeRows } from '../../shared/model/features';
import { argmaxRows, predictProba } from '../../shared/model/randomForest';
import type { TrainedModel } from '../../shared/model/trainedModel';

/** The model the API serves: the trained forest with its encoder. */
export type ServedModel = Pick<TrainedModel, 'encoder' | 'forest'>;

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
export function withTreePrefix(model: ServedModel, trees: number | null): ServedModel {
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
  const probabilities = predictProba(model.forest, encoded.bins, encoded.rows);
  const classCount = model.forest.classes.length;
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
 * than building 10,000 objects and stringifying them.
 */
export class PredictionWriter {
  private readonly parts: string[] = [];
  private count = 0;
  private readonly rateTexts: string[];

  constructor(model: ServedModel) {
    this.rateTexts = model.forest.classes.map((c) => String(Number(c)));
  }

  append(chunk: PredictedChunk): void {
    const { classIndex, probability } = chunk;
    let text = '';
    for (let r = 0; r < classIndex.length; r++) {
      text += `${this.count++ === 0 ? '' : ','}{"vatRatePercent":${this.rateTexts[classIndex[r]]},"probability":${roundedProbability(probability[r])}}`;
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
