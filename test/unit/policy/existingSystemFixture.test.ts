import { meanIntensityOver, type IntensitySeries } from '../../../shared/policy/intensitySeries';
import {
  createPolicy,
  DEFAULT_POLICY_OPTIONS,
  type BatchEvaluation,
  type PolicyConfig,
  type PolicyKnowledge,
  type RetrainRequest,
  type SchedulingPolicy,
} from '../../../shared/policy/schedulingPolicies';

/**
 * The existing system's published experiment, rebuilt as a fixture:
 * - 7 weekly batches; the experiment paired each batch with ONE day's grid intensity,
 *   [282, 445, 552, 615, 404, 224, 448] gCO2eq/kWh, so batch i arrives at 00:00 of day i and the
 *   intensity is constant over that day (a 1-day-step series).
 * - Batch 1 finds no model: the initial model is trained on it (both systems do this).
 * - Batches 2–7 each show an accuracy drop against the champion (every week's invoices drift; the
 *   experiment's retrain condition was "drop AND intensity < 400", and the drop held every week, so
 *   the intensity alone decided): baseline 0.90, batch accuracy 0.85 = 5.6 % relative drop, above
 *   the 2 % small-drop threshold.
 * Expected: `threshold` trains initially and retrains once, on the 224 day; `weekly` retrains on
 * every batch. Emissions per run = CPU seconds × intensity during the run (same CPU time per run,
 * since each retrain trains on a same-sized window), so the difference is purely the schedule.
 */
const DAY_MS = 24 * 3_600_000;
const DAY1 = Date.UTC(2024, 0, 1);
const DAILY_GRAMS_PER_KWH = [282, 445, 552, 615, 404, 224, 448];
const CPU_SECONDS_PER_RETRAIN = 540;
const REPORTED_PERCENT_MORE = 545;

const dailySeries: IntensitySeries = {
  firstStartMs: DAY1,
  stepMinutes: 24 * 60,
  gramsPerKwh: Float64Array.from(DAILY_GRAMS_PER_KWH),
  quality: 'actual',
};
const knowledge: PolicyKnowledge = {
  forecast: () => null, // the existing system had no forecast
  actual: (region) => (region === 'westeurope' ? dailySeries : null),
};
const config: PolicyConfig = {
  ...DEFAULT_POLICY_OPTIONS,
  thresholds: { smallDrop: 0.02, bigDrop: 0.08, minRows: 500, greenDeadlineHours: 24, nowDeadlineHours: 1 },
  durationMinutes: 30,
  homeRegion: 'westeurope',
  allowedRegions: ['westeurope'],
  residency: 'EU',
};
const batches: BatchEvaluation[] = DAILY_GRAMS_PER_KWH.map((_, i) => ({
  evaluatedAt: new Date(DAY1 + i * DAY_MS).toISOString(),
  championBaselineAccuracy: i === 0 ? null : 0.9,
  batchAccuracy: 0.85,
  rowsAccepted: 2000,
}));

interface Run {
  day: number;
  gramsPerKwh: number;
  urgency: RetrainRequest['urgency'];
}

/**
 * A minimal replay driver: one outstanding request at a time; at an instant the batch is evaluated
 * before runs due at that instant start (a run starting at a batch's arrival trains on that batch).
 */
function replay(policy: SchedulingPolicy): Run[] {
  const runs: Run[] = [];
  let pending: { request: RetrainRequest; startMs: number; endMs: number } | null = null;
  const flush = (untilMs: number, inclusive: boolean): void => {
    if (!pending) return;
    if (pending.startMs < untilMs || (inclusive && pending.startMs === untilMs)) {
      const gramsPerKwh = meanIntensityOver(dailySeries, pending.startMs, pending.endMs);
      if (gramsPerKwh === null) throw new Error('run outside the fixture');
      runs.push({
        day: Math.floor((pending.startMs - DAY1) / DAY_MS) + 1,
        gramsPerKwh,
        urgency: pending.request.urgency,
      });
      pending = null;
    }
  };
  for (const batch of batches) {
    const atMs = Date.parse(batch.evaluatedAt);
    flush(atMs, false);
    const wish = policy.wantsRetrain(batch, pending?.request ?? null);
    if (wish.kind === 'request') {
      const planned = policy.plan(wish.request, knowledge);
      pending =
        planned.kind === 'run'
          ? { request: wish.request, startMs: Date.parse(planned.startAt), endMs: Date.parse(planned.endAt) }
          : null;
    }
    flush(atMs, true);
  }
  flush(DAY1 + DAILY_GRAMS_PER_KWH.length * DAY_MS, false);
  return runs;
}

const emissions = (runs: readonly Run[]): number =>
  runs.reduce((sum, r) => sum + CPU_SECONDS_PER_RETRAIN * r.gramsPerKwh, 0);

describe('existing system fixture (7 weekly batches, threshold 400 gCO2eq/kWh)', () => {
  const thresholdRuns = replay(createPolicy('threshold', config));
  const weeklyRuns = replay(createPolicy('weekly', config));

  it('threshold reproduces the published schedule: initial training, then one retrain on the 224 day', () => {
    expect(thresholdRuns).toEqual([
      { day: 1, gramsPerKwh: 282, urgency: 'initial' },
      { day: 6, gramsPerKwh: 224, urgency: 'green' },
    ]);
  });

  it('weekly retrains on every batch at arrival', () => {
    expect(weeklyRuns.map((r) => r.day)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(weeklyRuns.map((r) => r.gramsPerKwh)).toEqual(DAILY_GRAMS_PER_KWH);
  });

  it('the naive weekly policy emits several times more (cpu-seconds × intensity)', () => {
    const weekly = emissions(weeklyRuns);
    const threshold = emissions(thresholdRuns);
    const percentMore = (weekly / threshold - 1) * 100;
    process.stdout.write(
      `existing-system fixture: weekly ${weekly.toFixed(0)} vs threshold ${threshold.toFixed(0)} ` +
        `cpu-s·gCO2eq/kWh → weekly emits ${percentMore.toFixed(0)} % more ` +
        `(published: ${REPORTED_PERCENT_MORE} %; equal CPU per run assumed)\n`,
    );
    expect(weekly / threshold).toBeGreaterThan(3);
    // With equal CPU per run the figure is fixed by the schedule: (Σ all days)/(282 + 224) − 1.
    expect(percentMore).toBeCloseTo((2970 / 506 - 1) * 100, 9);
  });

  it('threshold gives up (not scheduled) when intensity never falls below 400 within its wait', () => {
    const policy = createPolicy('threshold', { ...config, thresholdGiveUpHours: 48 });
    // Drop on day 2: the checks over days 2–4 see 445/552/615; the 224 day lies beyond the 48 h wait.
    const wish = policy.wantsRetrain(batches[1], null);
    if (wish.kind !== 'request') throw new Error('expected a request');
    expect(policy.plan(wish.request, knowledge)).toMatchObject({ kind: 'notScheduled' });
  });
});
