import { NEW_LABEL_MIN_SHARE } from './newLabels';

/**
 * How a retrain trains, chosen per run. `full` refits the whole window; `warm-start` keeps the
 * champion's older trees and grows new ones on the batches since its newest (a fraction of the
 * work); `adaptive` warm-starts only when that is safe and refits otherwise.
 *
 * Why adaptive: a warm start cannot unlearn. Its kept trees never saw a class that appeared since
 * (a new VAT rate), and after a big drop most of them describe a world that is gone, so they
 * outvote the few new trees (measured: vat-reform's worst gap to nightly 31.7 pp with warm start
 * on every retrain). A small drop with no new label is gradual drift the new trees can correct,
 * and because such a retrain is cheap, decideRetrain asks for it on the drop's point estimate.
 */
export type TrainingModeSetting = 'full' | 'warm-start' | 'adaptive';
export type TrainingMode = 'full' | 'warm-start';

export interface TrainingModeSignals {
  /** What asked for the run: the retrain decision's kind, or no decision (initial model, calendar). */
  decision: 'retrainWhenGreen' | 'retrainNow' | 'initial' | 'scheduled';
  /**
   * Largest share of rows labelled with a class the champion never saw, over the batches behind
   * the request; null when not measured (then adaptive cannot rule a new class out and refits).
   */
  unseenLabelShare: number | null;
  /**
   * Largest share of rows, over the categorical columns and the batches behind the request, whose
   * category the champion's encoder has no code for; null when not measured (then adaptive refits).
   */
  unseenCategoryShare: number | null;
}

/**
 * Most rows (as a share of a batch) whose category the champion's encoder lacks that a warm start
 * still accepts. A warm start extends the champion's encoder: newcomers with enough rows get codes
 * of their own and target statistics, so the new trees learn them, while the kept trees (40 % of
 * the vote) route them by codes they never saw. Customer churn is that case: supplier-churn
 * measures 6.8 % in the first week after a fit and 10 % in the second, and warm starts there match
 * nightly's accuracy at a fifth of a refit's energy (bench:policies, 52 weeks × DE 2021-2024).
 * When a quarter of the rows come from categories the champion never saw, the kept trees vote
 * blind on too much of the data: that is a new population, and it is refitted.
 */
export const NEW_CATEGORY_MAX_SHARE = 0.25;

export interface TrainingModeChoice {
  kind: TrainingMode;
  reason: string;
}

export function trainingModeFor(
  setting: TrainingModeSetting,
  signals: TrainingModeSignals,
): TrainingModeChoice {
  if (setting !== 'adaptive') return { kind: setting, reason: `TRAINING_MODE=${setting}` };
  if (signals.decision !== 'retrainWhenGreen')
    return { kind: 'full', reason: `${signals.decision}: only a small drop is warm-started` };
  if (signals.unseenLabelShare === null)
    return { kind: 'full', reason: 'new labels not measured: a new class cannot be ruled out' };
  if (signals.unseenLabelShare >= NEW_LABEL_MIN_SHARE)
    return {
      kind: 'full',
      reason: `${(signals.unseenLabelShare * 100).toFixed(2)} % of rows carry a label the champion never saw`,
    };
  if (signals.unseenCategoryShare === null)
    return { kind: 'full', reason: 'unknown categories not measured: the encoder may be stale' };
  if (signals.unseenCategoryShare >= NEW_CATEGORY_MAX_SHARE)
    return {
      kind: 'full',
      reason: `${(signals.unseenCategoryShare * 100).toFixed(2)} % of rows carry a category the champion's encoder lacks`,
    };
  return {
    kind: 'warm-start',
    reason: 'small drop, no new label, categories covered: new trees on the new batches',
  };
}

/** What an evaluation record says about one batch's drift against the champion that scored it. */
export interface RecordedDrift {
  batchName: string;
  drift: {
    unseenLabelShare?: number | null;
    unseenSupplierShare: number | null;
    unseenCountryShare: number | null;
  };
}

/**
 * The largest new-label and unknown-category shares over the batches a warm start would train on,
 * from their evaluation records (the category share is the larger of the supplier and country
 * shares, the categorical columns the records keep). A batch without a record, or with a share not
 * measured, makes the signal unknown: adaptive then refits rather than guess.
 */
export function driftOverBatches(
  batches: readonly string[],
  records: readonly RecordedDrift[],
): Pick<TrainingModeSignals, 'unseenLabelShare' | 'unseenCategoryShare'> {
  const byBatch = new Map(records.map((r) => [r.batchName, r.drift]));
  const label: (number | null)[] = [];
  const category: (number | null)[] = [];
  for (const batch of batches) {
    const drift = byBatch.get(batch);
    label.push(drift?.unseenLabelShare ?? null);
    const { unseenSupplierShare: supplier = null, unseenCountryShare: country = null } = drift ?? {};
    category.push(supplier === null || country === null ? null : Math.max(supplier, country));
  }
  const largest = (shares: (number | null)[]): number | null =>
    shares.some((x) => x === null) ? null : Math.max(0, ...(shares as number[]));
  return { unseenLabelShare: largest(label), unseenCategoryShare: largest(category) };
}
