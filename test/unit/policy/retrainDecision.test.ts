import { loadSettings } from '../../../shared/config';
import { ValidationError } from '../../../shared/errors';
import {
  decideRetrain,
  thresholdsFromSettings,
  type RetrainDecision,
  type RetrainThresholds,
} from '../../../shared/policy/retrainDecision';

const thresholds: RetrainThresholds = {
  smallDrop: 0.02,
  bigDrop: 0.08,
  minRows: 500,
  greenDeadlineHours: 24,
  nowDeadlineHours: 1,
};
const at = '2024-03-04T10:00:00.000Z';
const batch = (batchAccuracy: number, extra: Partial<Parameters<typeof decideRetrain>[0]> = {}) => ({
  championBaselineAccuracy: 0.9,
  batchAccuracy,
  rowsAccepted: 1000,
  evaluatedAt: at,
  ...extra,
});

describe('decideRetrain', () => {
  it('computes the relative drop and keeps quiet below the small threshold', () => {
    const d = decideRetrain(batch(0.89), thresholds);
    expect(d.kind).toBe('none');
    expect(d.relativeDrop).toBeCloseTo(0.01 / 0.9, 12);
  });

  it('asks for a green window on a small drop, with the green deadline', () => {
    const d = decideRetrain(batch(0.87), thresholds); // 3.3 % relative
    expect(d).toMatchObject({ kind: 'retrainWhenGreen', deadline: '2024-03-05T10:00:00.000Z' });
    expect(d.relativeDrop).toBeCloseTo(0.03 / 0.9, 12);
  });

  it('asks for a green retrain when rows carry a label the champion never saw, though accuracy holds', () => {
    // A new VAT rate starting on the batch's last day: accuracy barely moves, the next batch would not.
    const d = decideRetrain(batch(0.895, { unseenLabelShare: 0.01 }), thresholds);
    expect(d).toMatchObject({ kind: 'retrainWhenGreen', deadline: '2024-03-05T10:00:00.000Z' });
    expect(d.reason).toMatch(/label the champion never saw/);
    // One stray label in a thousand rows is not a new class; a real drop still decides by itself.
    expect(decideRetrain(batch(0.895, { unseenLabelShare: 0.001 }), thresholds).kind).toBe('none');
    expect(decideRetrain(batch(0.8, { unseenLabelShare: 0.01 }), thresholds).kind).toBe('retrainNow');
    expect(() => decideRetrain(batch(0.9, { unseenLabelShare: 1.5 }), thresholds)).toThrow(
      /unseenLabelShare/,
    );
  });

  it('judges the drop by its lower confidence bound when the baseline rows are known', () => {
    // 0.9 → 0.87 on 1,000 rows against 1,600 held-out rows: 3.3 % − 2.4 % (one-sided 95 %) = 0.95 %, not sure of 2 %.
    const noisy = decideRetrain(batch(0.87, { baselineRows: 1600 }), thresholds);
    expect(noisy.kind).toBe('none');
    expect(noisy.relativeDrop).toBeCloseTo(0.03 / 0.9, 12);
    expect(noisy.reason).toMatch(/95 % sure of 0\.95 %/);
    // The same drop measured on production-sized batches is beyond noise.
    expect(decideRetrain(batch(0.87, { baselineRows: 40_000, rowsAccepted: 25_000 }), thresholds).kind).toBe(
      'retrainWhenGreen',
    );
    // A big drop on small samples is still sure of the small one: green, not now.
    expect(decideRetrain(batch(0.81, { baselineRows: 1600 }), thresholds).kind).toBe('retrainWhenGreen');
    expect(decideRetrain(batch(0.7, { baselineRows: 1600 }), thresholds).kind).toBe('retrainNow');
  });

  it('takes a small drop a warm start would answer on its point estimate, a refit on its bound', () => {
    // The noisy 3.3 % drop above: not sure of 2 %, so no refit of the whole window...
    const noisy = { baselineRows: 1600, unseenLabelShare: 0 };
    expect(decideRetrain(batch(0.87, { ...noisy, trainingMode: 'full' }), thresholds).kind).toBe('none');
    // ...but a warm start (new trees on the newest batches) is cheap enough to act on it.
    const warm = decideRetrain(batch(0.87, { ...noisy, trainingMode: 'adaptive' }), thresholds);
    expect(warm).toMatchObject({ kind: 'retrainWhenGreen', deadline: '2024-03-05T10:00:00.000Z' });
    expect(warm.reason).toMatch(/a warm start answers it/);
    // Adaptive refits when it could not measure new labels: that drop keeps the 95 % bound.
    expect(
      decideRetrain(batch(0.87, { baselineRows: 1600, trainingMode: 'adaptive' }), thresholds).kind,
    ).toBe('none');
    // A new label asks for its refit on its own rule, not on the point estimate.
    const newLabel = decideRetrain(
      batch(0.87, { ...noisy, unseenLabelShare: 0.01, trainingMode: 'adaptive' }),
      thresholds,
    );
    expect(newLabel.reason).toMatch(/label the champion never saw/);
    // Below the small threshold even the point estimate asks for nothing; a big drop still needs its bound.
    expect(decideRetrain(batch(0.89, { ...noisy, trainingMode: 'adaptive' }), thresholds).kind).toBe('none');
    expect(decideRetrain(batch(0.81, { ...noisy, trainingMode: 'adaptive' }), thresholds).kind).toBe(
      'retrainWhenGreen',
    );
  });

  it('treats exactly the thresholds as reached (relative, not absolute points)', () => {
    // 0.9 → 0.882 is 1.8 points absolute but exactly 2 % relative.
    expect(decideRetrain(batch(0.9 * 0.98), thresholds).kind).toBe('retrainWhenGreen');
    expect(decideRetrain(batch(0.9 * 0.92), thresholds).kind).toBe('retrainNow');
  });

  it('asks for a retrain now on a big drop, with the now deadline', () => {
    expect(decideRetrain(batch(0.8), thresholds)).toMatchObject({
      kind: 'retrainNow',
      deadline: '2024-03-04T11:00:00.000Z',
    });
  });

  it('does not judge a batch with too few rows, however bad it looks', () => {
    const d = decideRetrain(batch(0.1, { rowsAccepted: 499 }), thresholds);
    expect(d).toEqual({ kind: 'none', relativeDrop: null, reason: expect.stringContaining('too few rows') });
  });

  it('an improvement is no drop', () => {
    const d = decideRetrain(batch(0.95), thresholds);
    expect(d.kind).toBe('none');
    expect(d.relativeDrop).toBeLessThan(0);
  });

  const pendingGreen: RetrainDecision = {
    kind: 'retrainWhenGreen',
    relativeDrop: 0.03,
    deadline: '2024-03-04T20:00:00.000Z',
    reason: 'earlier small drop',
  };

  it('escalates a pending green request to now on a big drop', () => {
    const d = decideRetrain(batch(0.8, { pending: pendingGreen }), thresholds);
    expect(d.kind).toBe('retrainNow');
    expect(d).toMatchObject({ deadline: '2024-03-04T11:00:00.000Z' });
    expect(d.reason).toContain('escalates');
  });

  it('a later small drop never postpones the pending deadline', () => {
    const d = decideRetrain(batch(0.87, { pending: pendingGreen }), thresholds);
    expect(d).toMatchObject({ kind: 'retrainWhenGreen', deadline: pendingGreen.deadline });
    expect(d.relativeDrop).toBeCloseTo(0.03 / 0.9, 12);
  });

  it('a small drop never downgrades a pending retrain-now', () => {
    const pendingNow: RetrainDecision = {
      kind: 'retrainNow',
      relativeDrop: 0.1,
      deadline: '2024-03-04T10:30:00.000Z',
      reason: 'big drop',
    };
    const d = decideRetrain(batch(0.87, { pending: pendingNow }), thresholds);
    expect(d).toMatchObject({ kind: 'retrainNow', deadline: pendingNow.deadline, relativeDrop: 0.1 });
  });

  it('a big drop keeps an even earlier pending deadline', () => {
    const pendingSoon: RetrainDecision = { ...pendingGreen, deadline: '2024-03-04T10:20:00.000Z' };
    const d = decideRetrain(batch(0.8, { pending: pendingSoon }), thresholds);
    expect(d).toMatchObject({ kind: 'retrainNow', deadline: '2024-03-04T10:20:00.000Z' });
  });

  it('keeps a pending request when the new batch shows no drop', () => {
    const d = decideRetrain(batch(0.9, { pending: pendingGreen }), thresholds);
    expect(d).toMatchObject({ kind: 'retrainWhenGreen', deadline: pendingGreen.deadline });
    expect(d.reason).toContain('kept');
  });

  it('rejects impossible inputs with a path-qualified ValidationError', () => {
    expect(() => decideRetrain(batch(1.5), thresholds)).toThrow(ValidationError);
    expect(() => decideRetrain(batch(0.8, { championBaselineAccuracy: 0 }), thresholds)).toThrow(
      /championBaselineAccuracy/,
    );
    expect(() => decideRetrain(batch(0.8, { evaluatedAt: 'yesterday' }), thresholds)).toThrow(/evaluatedAt/);
    expect(() => decideRetrain(batch(0.8), { ...thresholds, bigDrop: 0.01 })).toThrow(/bigDrop/);
  });

  it('reads the thresholds from settings', () => {
    const settings = loadSettings({
      DataStorage: 'UseDevelopmentStorage=true',
      RETRAIN_SMALL_DROP: '0.03',
      RETRAIN_BIG_DROP: '0.1',
      RETRAIN_MIN_ROWS: '200',
      RETRAIN_GREEN_DEADLINE_HOURS: '12',
      RETRAIN_NOW_DEADLINE_HOURS: '2',
    });
    expect(thresholdsFromSettings(settings)).toEqual({
      smallDrop: 0.03,
      bigDrop: 0.1,
      minRows: 200,
      greenDeadlineHours: 12,
      nowDeadlineHours: 2,
    });
  });
});
