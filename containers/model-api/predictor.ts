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
 * Scores a request's rows in one tree-major pass. This skips shared/model's predictRows on purpose:
 * that builds a per-class probability record for every row, which the API does not return and
 * which costs more than the forest walk at small forest sizes.
 */
export function predictInvoices(model: ServedModel, rows: readonly FeatureRow[]): Prediction[] {
  const encoded = encodeRows(model.encoder, rows);
  const probabilities = predictProba(model.forest, encoded.bins, encoded.rows);
  const classes = model.forest.classes;
  const classCount = classes.length;
  const rates = classes.map(Number);
  const best = argmaxRows(probabilities, classCount);
  return Array.from(best, (k, r) => ({
    vatRatePercent: rates[k],
    // Float32 sums print as 0.8399999737739563; six decimals is more than a vote of ≤1000 trees resolves.
    probability: Math.round(probabilities[r * classCount + k] * 1e6) / 1e6,
  }));
}
