import { NEW_LABEL_MIN_SHARE } from '../../../shared/policy/newLabels';
import {
  driftOverBatches,
  NEW_CATEGORY_MAX_SHARE,
  trainingModeFor,
  type TrainingModeSignals,
} from '../../../shared/policy/trainingMode';

const smallDrop: TrainingModeSignals = {
  decision: 'retrainWhenGreen',
  unseenLabelShare: 0,
  unseenCategoryShare: 0,
};

describe('trainingModeFor', () => {
  it('full and warm-start settings apply to every run whatever the signals', () => {
    const signals: TrainingModeSignals[] = [
      smallDrop,
      { decision: 'retrainNow', unseenLabelShare: 0.3, unseenCategoryShare: 0.5 },
      { decision: 'initial', unseenLabelShare: null, unseenCategoryShare: null },
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
    // Nor is customer churn (supplier-churn measures up to 10 % newcomers) a moved-on population:
    // the extended encoder gives the newcomers codes the new trees learn.
    const churn = { ...smallDrop, unseenCategoryShare: 0.1 };
    expect(trainingModeFor('adaptive', churn).kind).toBe('warm-start');
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

  it('adaptive refits a small drop once the champion encoder misses many categories', () => {
    const choice = trainingModeFor('adaptive', {
      ...smallDrop,
      unseenCategoryShare: NEW_CATEGORY_MAX_SHARE,
    });
    expect(choice).toEqual({
      kind: 'full',
      reason: expect.stringContaining("25.00 % of rows carry a category the champion's encoder lacks"),
    });
  });

  it('adaptive refits when unknown categories were not measured', () => {
    const choice = trainingModeFor('adaptive', { ...smallDrop, unseenCategoryShare: null });
    expect(choice).toEqual({ kind: 'full', reason: expect.stringContaining('categories not measured') });
  });
});

describe('driftOverBatches', () => {
  const record = (
    batchName: string,
    label: number | null,
    supplier: number | null,
    country: number | null,
  ): Parameters<typeof driftOverBatches>[1][number] => ({
    batchName,
    drift: { unseenLabelShare: label, unseenSupplierShare: supplier, unseenCountryShare: country },
  });

  it('takes the largest share over the window and over supplier and country', () => {
    const records = [
      record('b1', 0.001, 0.01, 0.03),
      record('b2', 0.004, 0.05, 0),
      // Outside the window: its large shares do not count.
      record('b0', 0.5, 0.9, 0.9),
    ];
    expect(driftOverBatches(['b1', 'b2'], records)).toEqual({
      unseenLabelShare: 0.004,
      unseenCategoryShare: 0.05,
    });
  });

  it('is unknown when a batch has no record or a share was not measured', () => {
    expect(driftOverBatches(['b1', 'b2'], [record('b1', 0, 0, 0)])).toEqual({
      unseenLabelShare: null,
      unseenCategoryShare: null,
    });
    expect(driftOverBatches(['b1'], [record('b1', 0, null, 0)])).toEqual({
      unseenLabelShare: 0,
      unseenCategoryShare: null,
    });
    // Records written before new labels were measured lack the field.
    const old = { batchName: 'b1', drift: { unseenSupplierShare: 0, unseenCountryShare: 0 } };
    expect(driftOverBatches(['b1'], [old]).unseenLabelShare).toBeNull();
  });

  it('feeds trainingModeFor: a new population refits, churn and a covered window warm-start', () => {
    const newPopulation = driftOverBatches(['b1', 'b2'], [record('b1', 0, 0.07, 0), record('b2', 0, 0, 0.3)]);
    const churned = driftOverBatches(['b1'], [record('b1', 0, 0.07, 0)]);
    const covered = driftOverBatches(['b1'], [record('b1', 0, 0.001, 0)]);
    const adaptive = (drift: typeof covered) =>
      trainingModeFor('adaptive', { decision: 'retrainWhenGreen', ...drift }).kind;
    expect(adaptive(newPopulation)).toBe('full');
    expect(adaptive(churned)).toBe('warm-start');
    expect(adaptive(covered)).toBe('warm-start');
  });
});
