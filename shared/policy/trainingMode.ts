import { NEW_LABEL_MIN_SHARE } from './newLabels';

/**
 * How a retrain trains, chosen per run. `full` refits the whole window; `warm-start` keeps the
 * champion's older trees and grows new ones on the batches since its newest (a fraction of the
 * work); `adaptive` warm-starts only when that is safe and refits otherwise.
 *
 * Why adaptive: a warm start cannot unlearn. Its kept trees never saw a class that appeared since
 * (a new VAT rate), and after a big drop most of them describe a world that is gone, so they
 * outvote the few new trees (measured: vat-reform's worst batch 29 pp below nightly with warm start
 * on every retrain). A small drop with no new label is gradual drift the new trees can correct,
 * and because such a retrain is cheap, decideRetrain asks for it on the drop's point estimate.
 *
 * New categories (customer churn) do not ask for a refit: the warm start extends the champion's
 * encoder, so newcomers with enough rows get codes and target statistics the new trees learn. A
 * rule that refitted once a share of rows had no code made supplier-churn both dirtier and less
 * accurate (52 weeks × DE 2021-2024, served accuracy: 0.41 × threshold and 89.4 % with the rule at
 * 25 %, 0.25 × and 89.9 % without), since at small batches that share mostly counts rare suppliers
 * the champion knew but gave no code of their own.
 */
export const TRAINING_MODE_SETTINGS = ['full', 'warm-start', 'adaptive'] as const;
export type TrainingModeSetting = (typeof TRAINING_MODE_SETTINGS)[number];
export type TrainingMode = 'full' | 'warm-start';

export interface TrainingModeSignals {
  /** What asked for the run: the retrain decision's kind, or no decision (initial model, calendar). */
  decision: 'retrainWhenGreen' | 'retrainNow' | 'initial' | 'scheduled';
  /**
   * Largest share of rows labelled with a class the champion never saw, over the batches behind
   * the request; null when not measured (then adaptive cannot rule a new class out and refits).
   */
  unseenLabelShare: number | null;
}

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
  return {
    kind: 'warm-start',
    reason: 'small drop, no new label: new trees on the newest batches',
  };
}

/** What an evaluation record says about one batch's drift against the champion that scored it. */
export interface RecordedDrift {
  batchName: string;
  drift: { unseenLabelShare?: number | null };
}

/**
 * The largest new-label share over the batches a warm start would train on, from their evaluation
 * records. A batch without a record, or with the share not measured, makes the signal unknown:
 * adaptive then refits rather than guess.
 */
export function driftOverBatches(
  batches: readonly string[],
  records: readonly RecordedDrift[],
): Pick<TrainingModeSignals, 'unseenLabelShare'> {
  const byBatch = new Map(records.map((r) => [r.batchName, r.drift]));
  const shares = batches.map((batch) => byBatch.get(batch)?.unseenLabelShare ?? null);
  return {
    unseenLabelShare: shares.some((x) => x === null) ? null : Math.max(0, ...(shares as number[])),
  };
}
