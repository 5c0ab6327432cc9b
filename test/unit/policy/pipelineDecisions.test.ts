import { decideAfterEvaluation } from '../../../shared/policy/retrainDecision';
import { promotionGate } from '../../../shared/policy/promotionGate';
import { chooseTrainingWindow } from '../../../shared/policy/trainingWindow';
import { judgeTrainingEnd } from '../../../shared/policy/trainingAttempt';

/** The decisions that used to hide inside the evaluator, comparison and launch activities. */
const thresholds = {
  smallDrop: 0.02,
  bigDrop: 0.1,
  minRows: 100,
  greenDeadlineHours: 48,
  nowDeadlineHours: 6,
};

describe('decideAfterEvaluation', () => {
  it('trains the first model now, within the "now" deadline, when there is no champion', () => {
    const decision = decideAfterEvaluation(
      {
        championBaselineAccuracy: null,
        batchAccuracy: null,
        rowsAccepted: 5,
        evaluatedAt: '2024-07-08T06:00:00.000Z',
      },
      thresholds,
    );
    expect(decision).toEqual({
      kind: 'retrainNow',
      reason: 'no champion model yet: initial training',
      relativeDrop: 0,
      deadline: '2024-07-08T12:00:00.000Z',
    });
  });

  it('judges the drop against the champion when there is one', () => {
    const decision = decideAfterEvaluation(
      {
        championBaselineAccuracy: 0.9,
        batchAccuracy: 0.6,
        rowsAccepted: 4000,
        evaluatedAt: '2024-09-09T06:00:00.000Z',
      },
      thresholds,
    );
    expect(decision.kind).toBe('retrainNow');
    expect(decision.reason).toMatch(/big drop/);
  });
});

describe('promotionGate', () => {
  it('promotes only a challenger that beats the champion by the minimum gain', () => {
    const base = { championAccuracy: 0.9, holdoutRows: 1000, minGain: 0.005 };
    expect(promotionGate({ ...base, challengerAccuracy: 0.904 }).verdict).toBe('reject');
    expect(promotionGate({ ...base, challengerAccuracy: 0.906 }).verdict).toBe('promote');
    expect(promotionGate({ ...base, challengerAccuracy: 0.9, minGain: 0 }).verdict).toBe('reject');
  });

  it('promotes a first model only when it was judged on held-out rows', () => {
    expect(
      promotionGate({ challengerAccuracy: 0.8, championAccuracy: null, holdoutRows: 10, minGain: 0 }),
    ).toMatchObject({
      verdict: 'promote',
    });
    expect(
      promotionGate({ challengerAccuracy: 1, championAccuracy: null, holdoutRows: 0, minGain: 0 }),
    ).toMatchObject({
      verdict: 'reject',
      reason: expect.stringMatching(/no held-out rows/),
    });
  });
});

describe('chooseTrainingWindow', () => {
  const accepted = ['w1', 'w2', 'w3', 'w4', 'w5'];

  it('takes the newest batches for a full retrain', () => {
    expect(
      chooseTrainingWindow({ acceptedBatches: accepted, windowBatches: 3, mode: 'full', champion: null }),
    ).toEqual({
      kind: 'train',
      batches: ['w3', 'w4', 'w5'],
      warmStartFrom: null,
    });
  });

  it('warm-starts on what the champion has not seen, or falls back to a full window', () => {
    const champion = { versionId: 'v1', dataWindow: ['w1', 'w2', 'w3'] };
    expect(
      chooseTrainingWindow({ acceptedBatches: accepted, windowBatches: 3, mode: 'warm-start', champion }),
    ).toEqual({
      kind: 'train',
      batches: ['w4', 'w5'],
      warmStartFrom: 'v1',
    });
    const seenAll = { versionId: 'v1', dataWindow: accepted };
    expect(
      chooseTrainingWindow({
        acceptedBatches: accepted,
        windowBatches: 2,
        mode: 'warm-start',
        champion: seenAll,
      }),
    ).toEqual({ kind: 'train', batches: ['w4', 'w5'], warmStartFrom: null });
  });

  it('warm-starts a warm-started champion only on batches newer than its newest one', () => {
    // v2 grew its new trees on w3 and kept v1's trees, which saw w1 and w2: those are not new.
    const warmChampion = { versionId: 'v2', dataWindow: ['w3'] };
    expect(
      chooseTrainingWindow({
        acceptedBatches: accepted,
        windowBatches: 3,
        mode: 'warm-start',
        champion: warmChampion,
      }),
    ).toEqual({ kind: 'train', batches: ['w4', 'w5'], warmStartFrom: 'v2' });
    // A champion whose batches are no longer accepted tells nothing about what is new: full window.
    const unknown = { versionId: 'v0', dataWindow: ['w0'] };
    expect(
      chooseTrainingWindow({
        acceptedBatches: accepted,
        windowBatches: 3,
        mode: 'warm-start',
        champion: unknown,
      }),
    ).toEqual({ kind: 'train', batches: ['w3', 'w4', 'w5'], warmStartFrom: null });
  });

  it('grows warm-started trees on at least the newest two batches', () => {
    // One new weekly batch alone would give the new trees (the vote's majority) and the next
    // baseline a single week: they also read the newest batch the champion already saw.
    const champion = { versionId: 'v1', dataWindow: ['w2', 'w3', 'w4'] };
    expect(
      chooseTrainingWindow({ acceptedBatches: accepted, windowBatches: 3, mode: 'warm-start', champion }),
    ).toEqual({ kind: 'train', batches: ['w4', 'w5'], warmStartFrom: 'v1' });
    // The floor never exceeds the window cap.
    expect(
      chooseTrainingWindow({ acceptedBatches: accepted, windowBatches: 1, mode: 'warm-start', champion }),
    ).toEqual({ kind: 'train', batches: ['w5'], warmStartFrom: 'v1' });
  });

  it('grows warm-started trees on at most the newest three batches, however long the champion served', () => {
    const weeks = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8', 'w9', 'w10'];
    // v1 trained on w1-w4 and served six more weeks before a small drop.
    const champion = { versionId: 'v1', dataWindow: ['w1', 'w2', 'w3', 'w4'] };
    expect(
      chooseTrainingWindow({ acceptedBatches: weeks, windowBatches: 8, mode: 'warm-start', champion }),
    ).toEqual({ kind: 'train', batches: ['w8', 'w9', 'w10'], warmStartFrom: 'v1' });
    // A full refit still reads the whole window.
    expect(
      chooseTrainingWindow({ acceptedBatches: weeks, windowBatches: 8, mode: 'full', champion }),
    ).toEqual({ kind: 'train', batches: weeks.slice(-8), warmStartFrom: null });
  });

  it('says when there is nothing to train on', () => {
    expect(
      chooseTrainingWindow({ acceptedBatches: [], windowBatches: 3, mode: 'full', champion: null }),
    ).toEqual({
      kind: 'nothing-to-train',
    });
  });
});

describe('judgeTrainingEnd', () => {
  it('retries a killed or lost container, not one that rejected its input or timed out', () => {
    expect(judgeTrainingEnd({ kind: 'missing' }, 90)).toMatchObject({ retryable: true });
    expect(
      judgeTrainingEnd({ kind: 'failed', exitCode: null, reason: 'killed by SIGKILL' }, 90),
    ).toMatchObject({
      retryable: true,
    });
    expect(judgeTrainingEnd({ kind: 'failed', exitCode: 1, reason: 'bad input' }, 90)).toMatchObject({
      retryable: false,
    });
    expect(judgeTrainingEnd({ kind: 'running', startedAt: 'x' }, 90)).toMatchObject({
      retryable: false,
      reason: expect.stringMatching(/within 90 min/),
    });
    expect(judgeTrainingEnd({ kind: 'succeeded', startedAt: 'a', finishedAt: 'b', exitCode: 0 }, 90)).toEqual(
      { kind: 'succeeded' },
    );
  });
});
