import { NEW_LABEL_MIN_SHARE } from '../../../shared/policy/newLabels';
import {
  driftOverBatches,
  trainingModeFor,
  type TrainingModeSignals,
} from '../../../shared/policy/trainingMode';

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
      const choice = trainingModeFor('adaptive', { ...smallDrop, decision });
      expect(choice).toEqual({ kind: 'full', reason: expect.stringContaining(decision) });
    }
  });

  it('adaptive refits a small drop once a new label appeared', () => {
    const choice = trainingModeFor('adaptive', { ...smallDrop, unseenLabelShare: NEW_LABEL_MIN_SHARE });
    expect(choice).toEqual({ kind: 'full', reason: expect.stringContaining('0.20 % of rows') });
  });

  it('adaptive refits when new labels were not measured', () => {
    const choice = trainingModeFor('adaptive', { ...smallDrop, unseenLabelShare: null });
    expect(choice).toEqual({ kind: 'full', reason: expect.stringContaining('new labels not measured') });
  });
});

describe('driftOverBatches', () => {
  const record = (batchName: string, label: number | null) => ({
    batchName,
    drift: { unseenLabelShare: label, unseenSupplierShare: 0.07, unseenCountryShare: 0 },
  });

  it('takes the largest new-label share over the window', () => {
    const records = [
      record('b1', 0.001),
      record('b2', 0.004),
      // Outside the window: its large share does not count.
      record('b0', 0.5),
    ];
    expect(driftOverBatches(['b1', 'b2'], records)).toEqual({ unseenLabelShare: 0.004 });
  });

  it('is unknown when a batch has no record or the share was not measured', () => {
    expect(driftOverBatches(['b1', 'b2'], [record('b1', 0)])).toEqual({ unseenLabelShare: null });
    expect(driftOverBatches(['b1'], [record('b1', null)])).toEqual({ unseenLabelShare: null });
    // Records written before new labels were measured lack the field.
    const old = { batchName: 'b1', drift: {} };
    expect(driftOverBatches(['b1'], [old]).unseenLabelShare).toBeNull();
  });

  it('feeds trainingModeFor: a window with a new class refits; churned suppliers alone warm-start', () => {
    const adaptive = (drift: ReturnType<typeof driftOverBatches>) =>
      trainingModeFor('adaptive', { decision: 'retrainWhenGreen', ...drift }).kind;
    expect(adaptive(driftOverBatches(['b1', 'b2'], [record('b1', 0), record('b2', 0.01)]))).toBe('full');
    // 7 % of rows from suppliers the champion never coded: the extended encoder gives them codes.
    expect(adaptive(driftOverBatches(['b1', 'b2'], [record('b1', 0), record('b2', 0)]))).toBe('warm-start');
  });
});
