import { NEW_LABEL_MIN_SHARE } from '../../../shared/policy/retrainDecision';
import { trainingModeFor, type TrainingModeSignals } from '../../../shared/policy/trainingMode';

const smallDrop: TrainingModeSignals = { decision: 'retrainWhenGreen', unseenLabelShare: 0 };

describe('trainingModeFor', () => {
  it('full and warm-start settings apply to every run whatever the signals', () => {
    const signals: TrainingModeSignals[] = [
      smallDrop,
      { decision: 'retrainNow', unseenLabelShare: 0.3 },
      { decision: 'initial', unseenLabelShare: null },
    ];
    for (const s of signals) {
      expect(trainingModeFor('full', s).kind).toBe('full');
      expect(trainingModeFor('warm-start', s).kind).toBe('warm-start');
    }
  });

  it('adaptive warm-starts a small drop with no new label', () => {
    expect(trainingModeFor('adaptive', smallDrop)).toEqual({
      kind: 'warm-start',
      reason: expect.stringContaining('small drop'),
    });
    // A stray unknown row below the new-label threshold is not a new class.
    const stray = { ...smallDrop, unseenLabelShare: NEW_LABEL_MIN_SHARE / 2 };
    expect(trainingModeFor('adaptive', stray).kind).toBe('warm-start');
  });

  it('adaptive refits after a big drop, for the initial model and on the calendar', () => {
    for (const decision of ['retrainNow', 'initial', 'scheduled'] as const) {
      const choice = trainingModeFor('adaptive', { decision, unseenLabelShare: 0 });
      expect(choice).toEqual({ kind: 'full', reason: expect.stringContaining(decision) });
    }
  });

  it('adaptive refits a small drop once a new label appeared', () => {
    const choice = trainingModeFor('adaptive', { ...smallDrop, unseenLabelShare: NEW_LABEL_MIN_SHARE });
    expect(choice).toEqual({ kind: 'full', reason: expect.stringContaining('0.20 % of rows') });
  });

  it('adaptive refits when new labels were not measured', () => {
    const choice = trainingModeFor('adaptive', { ...smallDrop, unseenLabelShare: null });
    expect(choice).toEqual({ kind: 'full', reason: expect.stringContaining('not measured') });
  });
});
