import { NEW_LABEL_MIN_SHARE } from './retrainDecision';

/**
 * How a retrain trains, chosen per run. `full` refits the whole window; `warm-start` keeps the
 * champion's older trees and grows new ones on the batches since its newest (a fraction of the
 * work); `adaptive` warm-starts only when that is safe and refits otherwise.
 *
 * Why adaptive: a warm start cannot unlearn. Its kept trees never saw a class that appeared since
 * (a new VAT rate), and after a big drop most of them describe a world that is gone, so they
 * outvote the few new trees (measured: vat-reform's worst gap to nightly 31.7 pp with warm start
 * on every retrain). A small drop with no new label is gradual drift the new trees can correct.
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
  return { kind: 'warm-start', reason: 'small drop, no new label: new trees on the new batches' };
}
