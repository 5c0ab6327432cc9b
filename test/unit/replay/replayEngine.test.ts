import {
  DEFAULT_PRODUCTION_JOB,
  fitCostModel,
  fitLine,
  plannedDurationMinutes,
  retrainCost,
} from '../../../bench/replay/costModel';
import {
  modeSignals,
  runReplay,
  trainingWindowFor,
  warmTreeShare,
  type ReplayCase,
  type ReplayConfig,
} from '../../../bench/replay/engine';
import { ModelBank } from '../../../bench/replay/modelBank';
import { summarise, tableOf, type CaseTable, type PolicyRow } from '../../../bench/replay/tables';
import { allZoneYears } from '../../../bench/replay/traceWorld';
import { POLICY_NAMES, type PolicyName } from '../../../shared/policy/schedulingPolicies';
import { CCF_AZURE_ENERGY_COEFFICIENTS } from '../../../shared/sci/energy';

// A fixed cost model (the CLI fits one from measured CPU, which is not reproducible run to run).
const costModel = fitCostModel(
  [
    { rows: 10_000, cpuSeconds: 2, wallSeconds: 1.2 },
    { rows: 40_000, cpuSeconds: 7, wallSeconds: 4 },
  ],
  10,
  DEFAULT_PRODUCTION_JOB,
  CCF_AZURE_ENERGY_COEFFICIENTS,
);

const zoneYears = allZoneYears().filter(
  (z) => z.year === 2022 && (z.zone === 'DE' || z.zone === 'US-TEX-ERCO'),
);

// vat-reform: the Finnish rate change lands in replayed week 1, so accuracy-driven policies retrain.
const config: ReplayConfig = {
  weeks: 5,
  scenarios: ['vat-reform'],
  zoneYears,
  policies: POLICY_NAMES,
  model: { rowsPerWeek: 600, trees: 4, seed: 7 },
  windowWeeks: 8,
  costModel,
  thresholds: { smallDrop: 0.02, bigDrop: 0.08, minRows: 500, greenDeadlineHours: 24, nowDeadlineHours: 1 },
  seed: 7,
  batchHourUtc: 9,
  trainingMode: 'full',
};

const outcome = (c: ReplayCase, policy: string) => {
  const found = c.outcomes.find((o) => o.policy === policy);
  if (!found) throw new Error(`no outcome for ${policy}`);
  return found;
};

describe('policy replay engine', () => {
  let cases: ReplayCase[];
  beforeAll(async () => {
    ({ cases } = await runReplay(config));
  }, 60_000);

  it('replays every scenario × zone-year with every policy', () => {
    expect(zoneYears.map((z) => z.zone)).toEqual(['DE', 'US-TEX-ERCO']);
    expect(cases).toHaveLength(2);
    for (const c of cases) expect(c.outcomes.map((o) => o.policy)).toEqual(POLICY_NAMES);
    // Spatial shifting stays inside the residency group of the home region.
    expect(cases[0].zoneYear.regions).toContain('swedencentral');
    expect(cases[0].zoneYear.regions).not.toContain('westus');
    expect(cases[1].zoneYear).toMatchObject({ homeRegion: 'southcentralus', residency: 'US' });
  });

  it('is deterministic for a seed', async () => {
    const again = await runReplay(config);
    // CPU measured in this process (evaluator, window search) varies; everything decided must not.
    const decided = (all: typeof cases) =>
      all.map((c) => ({
        ...c,
        outcomes: c.outcomes.map((o) => ({
          ...o,
          scheduler: { providerPolls: o.scheduler.providerPolls, skippedPolls: o.scheduler.skippedPolls },
        })),
      }));
    expect(decided(again.cases)).toEqual(decided(cases));
  }, 60_000);

  it('oracle is ≤ every policy on the same requests, run by run', () => {
    for (const c of cases) {
      for (const o of c.outcomes) {
        for (const run of o.runs) {
          expect(run.oracleGrams).toBeLessThanOrEqual(run.grams * (1 + 1e-9));
          // Confining the oracle to the home region can only cost it: that difference is spatial.
          expect(run.oracleGrams).toBeLessThanOrEqual(run.homeOracleGrams * (1 + 1e-9));
          expect(run.fairOracleGrams).toBeGreaterThan(0);
        }
        const row = tableOf(c).rows.find((r) => r.policy === o.policy);
        if (o.runs.length > 0) expect(row?.ratioToOracle).toBeGreaterThanOrEqual(1 - 1e-9);
        else expect(row?.ratioToOracle).toBeNull();
      }
      // The oracle policy gets exactly green-spatial's requests, so its own total is the bound for it.
      const oracle = outcome(c, 'oracle');
      for (const name of ['green', 'green-spatial']) {
        const ours = outcome(c, name);
        expect(ours.runs.map((r) => [r.requestedAt, r.deadline, r.window])).toEqual(
          oracle.runs.map((r) => [r.requestedAt, r.deadline, r.window]),
        );
        expect(oracle.grams).toBeLessThanOrEqual(ours.grams * (1 + 1e-9));
      }
    }
  });

  it('splits ours ÷ threshold into factors that multiply back, with bounds below it', () => {
    let split = 0;
    for (const c of cases) {
      const rows = tableOf(c).rows;
      const threshold = rows.find((r) => r.policy === 'threshold');
      for (const name of ['green', 'green-spatial'] as const) {
        const row = rows.find((r) => r.policy === name);
        const v = row?.vsThreshold;
        if (!row || !v || !threshold) continue;
        split++;
        expect(v.retrains).toBeCloseTo(row.retrains / threshold.retrains, 12);
        expect(v.retrains * v.energyPerRetrain * v.intensity).toBeCloseTo(row.ratioToThreshold ?? NaN, 9);
        // Perfect forecasts can only help inside the same deadline.
        expect(v.ownDeadlineBound).toBeLessThanOrEqual((row.ratioToThreshold ?? 0) * (1 + 1e-9));
        // Home only: a 7-day wait with perfect knowledge sees every window the 24 h plan could use.
        if (name === 'green') expect(v.sevenDayBound).toBeLessThanOrEqual(v.ownDeadlineBound * (1 + 1e-9));
        // The immediate refits are a part of our emissions, exactly those of our `now` runs.
        const ours = outcome(c, name);
        const immediateGrams = ours.runs.filter((r) => r.urgency === 'now').reduce((s, r) => s + r.grams, 0);
        expect(v.immediateShare * threshold.grams).toBeCloseTo(immediateGrams, 12);
        expect(v.immediateShare).toBeLessThanOrEqual((row.ratioToThreshold ?? 0) * (1 + 1e-9));
        // Waiting up to 7 days on perfect knowledge sees every window our 24 h plan could use, so the
        // floor lies between the all-patient bound and what we emitted.
        if (name === 'green') {
          expect(v.scheduleFloor).toBeGreaterThanOrEqual(v.sevenDayBound * (1 - 1e-9));
          expect(v.scheduleFloor).toBeLessThanOrEqual((row.ratioToThreshold ?? 0) * (1 + 1e-9));
          expect(v.scheduleFloor).toBeGreaterThanOrEqual(v.immediateShare * (1 - 1e-9));
        }
      }
      expect(threshold?.vsThreshold?.retrains ?? 1).toBe(1);
    }
    expect(split).toBeGreaterThan(0);
  });

  it('the drift makes accuracy-driven policies retrain, and ours never miss a deadline', () => {
    for (const c of cases) {
      expect(outcome(c, 'green').runs.length).toBeGreaterThan(0);
      expect(outcome(c, 'nightly').runs.length).toBeGreaterThanOrEqual(7 * (config.weeks - 1));
      for (const name of ['green', 'green-spatial', 'oracle']) {
        const o = outcome(c, name);
        expect(o.deadlineMisses).toBe(0);
        for (const run of o.runs) expect(Date.parse(run.endAt)).toBeLessThanOrEqual(Date.parse(run.deadline));
      }
      expect(outcome(c, 'green').runs.every((r) => r.region === c.zoneYear.homeRegion)).toBe(true);
    }
  });

  it('never computes accuracy on rows the serving model trained on', () => {
    let scoredByRetrainedModel = 0;
    for (const c of cases) {
      for (const o of c.outcomes) {
        expect(o.evaluations).toHaveLength(config.weeks);
        for (const e of o.evaluations) {
          expect(e.servingWindow).not.toBeNull();
          expect(e.servingWindow?.lastWeek).toBeLessThan(e.week);
          expect(e.rowsSeenInTraining).toBe(0);
          if ((e.servingWindow?.lastWeek ?? 0) >= config.windowWeeks) scoredByRetrainedModel++;
        }
      }
    }
    expect(scoredByRetrainedModel).toBeGreaterThan(0);
  });

  it("scores what users were served: each champion of the batch's week, weighted by its share", async () => {
    const bank = new ModelBank('vat-reform', config.weeks + config.windowWeeks, config.model);
    let changedMidWeek = 0;
    for (const c of cases) {
      for (const o of c.outcomes) {
        for (let i = 1; i < o.evaluations.length; i++) {
          const before = o.evaluations[i - 1].servingWindow;
          const e = o.evaluations[i];
          if (!before || !e.servingWindow || e.servedAccuracy === null) throw new Error('unscored week');
          if (JSON.stringify(before) === JSON.stringify(e.servingWindow)) {
            // One champion all week: served and at-arrival accuracy are the same number.
            expect(e.servedAccuracy).toBe(e.accuracy);
            continue;
          }
          // A retrain ended during the week: the batch was served partly by the old champion.
          changedMidWeek++;
          const old = (await bank.score(before, e.week)).accuracy;
          const low = Math.min(old, e.accuracy as number);
          const high = Math.max(old, e.accuracy as number);
          expect(e.servedAccuracy).toBeGreaterThanOrEqual(low - 1e-12);
          expect(e.servedAccuracy).toBeLessThanOrEqual(high + 1e-12);
          if (old !== e.accuracy) expect([old, e.accuracy]).not.toContain(e.servedAccuracy);
        }
        const served = o.evaluations.map((e) => e.servedAccuracy as number);
        expect(o.meanAccuracy).toBeCloseTo(served.reduce((a, b) => a + b, 0) / served.length, 12);
      }
    }
    expect(changedMidWeek).toBeGreaterThan(0);
  }, 60_000);

  it('the training-row check detects a model scored on its own training data', async () => {
    const bank = new ModelBank('stable', 2, { rowsPerWeek: 600, trees: 2, seed: 1 });
    const own = await bank.score({ firstWeek: 0, lastWeek: 0 }, 0);
    expect(own.rowsSeenInTraining).toBeGreaterThan(400); // ~80 % of rows are training rows
    expect((await bank.score({ firstWeek: 0, lastWeek: 0 }, 1)).rowsSeenInTraining).toBe(0);
  }, 30_000);
});

describe("warm-start replay (the product's TRAINING_MODE=warm-start for our policies)", () => {
  it('chooses weeks by the product rule: only weeks newer than the champion, lineage kept', () => {
    const full = { firstWeek: 0, lastWeek: 7 };
    expect(trainingWindowFor(9, 8, 'full', full)).toEqual({ firstWeek: 2, lastWeek: 9 });
    const warm = trainingWindowFor(9, 8, 'warm-start', full);
    expect(warm).toEqual({ firstWeek: 8, lastWeek: 9, warmFrom: full });
    // A warm champion's kept trees saw weeks 0-7: the next warm start reads only what is new
    // (week 10) and, so that its new trees rest on more than one week, the newest week before it.
    expect(trainingWindowFor(10, 8, 'warm-start', warm)).toEqual({
      firstWeek: 9,
      lastWeek: 10,
      warmFrom: warm,
    });
    expect(trainingWindowFor(12, 8, 'warm-start', warm)).toEqual({
      firstWeek: 10,
      lastWeek: 12,
      warmFrom: warm,
    });
    // Nothing new since the champion: a full window.
    expect(trainingWindowFor(9, 8, 'warm-start', warm)).toEqual({ firstWeek: 2, lastWeek: 9 });
    expect(warmTreeShare(50)).toBe(0.6);
  });

  it('adaptive reads the decision and the new-label share off the request', () => {
    const request = {
      requestedAt: '2022-03-01T10:00:00.000Z',
      deadline: '2022-03-02T10:00:00.000Z',
      durationMinutes: 1,
      relativeDrop: 0.03,
      reason: 'drop',
      homeRegion: 'westeurope',
      regions: ['westeurope'],
      residency: 'ANY',
    } as const;
    expect(modeSignals({ ...request, urgency: 'green', unseenLabelShare: 0 })).toEqual({
      decision: 'retrainWhenGreen',
      unseenLabelShare: 0,
    });
    expect(modeSignals({ ...request, urgency: 'now' })).toEqual({
      decision: 'retrainNow',
      unseenLabelShare: null,
    });
    expect(modeSignals({ ...request, urgency: 'scheduled' }).decision).toBe('scheduled');
  });

  it('runs our policies on real warm-started models at a fraction of the energy; peers stay full', async () => {
    const warmConfig: ReplayConfig = {
      ...config,
      zoneYears: zoneYears.slice(0, 1),
      trainingMode: 'warm-start',
    };
    const [c] = (await runReplay(warmConfig)).cases;
    const fullRun = retrainCost(costModel, 8).energyKwh;
    for (const name of ['green', 'green-spatial', 'oracle']) {
      const runs = outcome(c, name).runs;
      expect(runs.length).toBeGreaterThan(0);
      for (const run of runs) {
        expect(run.window.warmFrom).toBeDefined();
        expect(run.energyKwh).toBeLessThan(fullRun * 0.6);
      }
    }
    for (const run of outcome(c, 'threshold').runs) {
      expect(run.window.warmFrom).toBeUndefined();
      expect(run.energyKwh).toBeCloseTo(fullRun, 12);
    }
    // Scored by the warm-started models themselves, never on rows any tree of their lineage saw.
    const green = outcome(c, 'green');
    expect(green.evaluations.some((e) => e.servingWindow?.warmFrom !== undefined)).toBe(true);
    for (const e of green.evaluations) expect(e.rowsSeenInTraining).toBe(0);
  }, 60_000);
});

describe('training cost model', () => {
  it('least squares recovers a line and reports its fit', () => {
    const fit = fitLine([1000, 2000, 4000], [1.5, 2.5, 4.5]);
    expect(fit.intercept).toBeCloseTo(0.5, 12);
    expect(fit.slope).toBeCloseTo(0.001, 12);
    expect(fit.r2).toBeCloseTo(1, 12);
    expect(fitLine([1, 2, 3, 4], [1, 3, 2, 4]).r2).toBeCloseTo(0.64, 12);
    expect(() => fitLine([5, 5], [1, 2])).toThrow(/distinct/);
  });

  it('scales the fit to the production job and turns it into energy', () => {
    // cpu = 1/3 + 1/6000·rows at 10 trees; 200 000 rows × 50 trees → (1/3 + 33.33) × 5 = 168.3 cpu-s.
    const full = retrainCost(costModel, 8);
    expect(full.rows).toBe(200_000);
    expect(full.cpuSeconds).toBeCloseTo((1 / 3 + 200_000 / 6000) * 5, 6);
    expect(full.wallSeconds).toBeGreaterThanOrEqual(full.cpuSeconds / DEFAULT_PRODUCTION_JOB.vcpus);
    expect(retrainCost(costModel, 4).energyKwh).toBeLessThan(full.energyKwh);
    expect(full.energyKwh).toBeGreaterThan(0);
    expect(plannedDurationMinutes(costModel, 8)).toBe(Math.ceil(full.wallSeconds / 60));
  });
});

describe('replay tables', () => {
  it('medians skip tables where neither policy retrained (0 ÷ 0 is no ratio)', () => {
    const row = (policy: PolicyName, grams: number, retrains: number, accuracy: number): PolicyRow => ({
      policy,
      retrains,
      grams,
      ratioToOracle: retrains > 0 ? 1.05 : null,
      ratioToFairOracle: retrains > 0 ? 1.02 : null,
      fairToHomeOracle: null,
      homeToOracle: null,
      ratioToNightly: null,
      ratioToThreshold: null,
      vsThreshold: null,
      meanAccuracy: accuracy,
      worstGapToNightlyPp: null,
      deadlineMisses: 0,
      scheduler: {
        trainingCpuSeconds: 0,
        evaluatorCpuSeconds: 0,
        providerPolls: 0,
        skippedPolls: 0,
        pollerCpuSeconds: 0,
        homeGramsPerKwh: 300,
        evaluatorGrams: 0,
        pollerGrams: 0,
      },
      savingVsNightlyGrams: null,
      pollerShareOfSaving: null,
    });
    const table = (rows: PolicyRow[]): CaseTable => ({
      scenario: 'stable',
      zoneYear: 'DE 2022',
      homeRegion: 'germanywestcentral',
      regions: [],
      durationMinutes: 1,
      rows,
    });
    const summary = summarise(
      [
        table([row('nightly', 10, 300, 0.92), row('green', 0, 0, 0.92)]),
        table([row('nightly', 10, 300, 0.92), { ...row('green', 1, 2, 0.915), ratioToOracle: 1.2 }]),
        table([row('nightly', 10, 300, 0.9), { ...row('green', 1, 2, 0.9), ratioToOracle: 1.4 }]),
      ],
      'green',
    );
    expect(summary).toMatchObject({ cases: 3, casesWithRetrains: 2, deadlineMisses: 0 });
    expect(summary.medianRatioToOracle).toBeCloseTo(1.3, 12);
    expect(summary.worstMeanAccuracyGapPp).toBeCloseTo(0.5, 9);
    expect(summary.medianMeanAccuracyGapPp).toBeCloseTo(0, 9);
  });
});
