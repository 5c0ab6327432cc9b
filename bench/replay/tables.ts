import { table as formatTable } from '../../shared/cli/table';
import type { PolicyName } from '../../shared/policy/schedulingPolicies';
import type { ReplayCase, SchedulerUsage } from './engine';
import { zoneYearLabel } from './traceWorld';

/** Goals printed beside the results; they are targets, not assertions. */
export const TARGETS = {
  maxRatioToOracle: 1.1,
  maxRatioToThreshold: 0.5,
  maxMeanAccuracyGapPp: 0.5,
  maxDeadlineMisses: 0,
  maxPollerShareOfSaving: 0.1,
} as const;

export interface PolicyRow {
  readonly policy: PolicyName;
  readonly retrains: number;
  readonly grams: number;
  /** Emissions ÷ the oracle on this policy's OWN requests (same jobs, perfect future, every allowed region). */
  readonly ratioToOracle: number | null;
  /** Emissions ÷ this policy's own planning on perfect forecasts (same regions, horizon, deadline). */
  readonly ratioToFairOracle: number | null;
  /** The absolute oracle's edge split: fair ÷ home-region oracle (future beyond the forecast horizon)
   * and home-region oracle ÷ oracle (other regions). ours/oracle = ÷fair × these two. */
  readonly fairToHomeOracle: number | null;
  readonly homeToOracle: number | null;
  readonly ratioToNightly: number | null;
  readonly ratioToThreshold: number | null;
  /** ours ÷ threshold split into its factors (null unless both retrained); their product is ratioToThreshold. */
  readonly vsThreshold: ThresholdSplit | null;
  readonly meanAccuracy: number;
  /** Largest (nightly − this) accuracy over any batch, percentage points; null without nightly. */
  readonly worstGapToNightlyPp: number | null;
  readonly deadlineMisses: number;
  readonly scheduler: SchedulerUsage;
  /** Nightly's training emissions minus this policy's; null without nightly. */
  readonly savingVsNightlyGrams: number | null;
  /** Poller grams ÷ that saving (target ≤ 10 %); null when nothing was saved. */
  readonly pollerShareOfSaving: number | null;
}

/**
 * ours ÷ threshold = retrains ratio × energy-per-retrain ratio × run-time intensity ratio, and two
 * bounds on the same requests: planned on perfect forecasts inside our own deadline (no choice of
 * window inside it can do better), and in the home region with the threshold's 7-day wait on
 * perfect knowledge (what that much patience could buy at best).
 */
export interface ThresholdSplit {
  readonly retrains: number;
  readonly energyPerRetrain: number;
  readonly intensity: number;
  readonly ownDeadlineBound: number;
  readonly sevenDayBound: number;
  /**
   * Our refits run at once after a big drop (urgency `now`, which the product never delays) ÷ the
   * threshold's emissions: the part of ours ÷ threshold no schedule of our other retrains can remove.
   */
  readonly immediateShare: number;
  /**
   * The lowest ours ÷ threshold any schedule of our other retrains could reach: the immediate refits
   * as run, every other retrain at its 7-day perfect-knowledge bound. Below it only fewer or cheaper
   * retrains go.
   */
  readonly scheduleFloor: number;
  /** Our mean accuracy minus the threshold peer's, percentage points. */
  readonly accuracyPp: number;
}

function thresholdSplit(
  o: ReplayCase['outcomes'][number],
  t: ReplayCase['outcomes'][number] | undefined,
): ThresholdSplit | null {
  if (
    !t ||
    o.runs.length === 0 ||
    t.runs.length === 0 ||
    o.energyKwh <= 0 ||
    t.energyKwh <= 0 ||
    t.grams <= 0
  )
    return null;
  const immediateGrams = o.runs.filter((r) => r.urgency === 'now').reduce((sum, r) => sum + r.grams, 0);
  return {
    retrains: o.runs.length / t.runs.length,
    energyPerRetrain: o.energyKwh / o.runs.length / (t.energyKwh / t.runs.length),
    intensity: o.grams / o.energyKwh / (t.grams / t.energyKwh),
    ownDeadlineBound: o.fairOracleGrams / t.grams,
    sevenDayBound: o.patientOracleGrams / t.grams,
    immediateShare: immediateGrams / t.grams,
    scheduleFloor:
      (immediateGrams +
        o.runs.filter((r) => r.urgency !== 'now').reduce((sum, r) => sum + r.patientOracleGrams, 0)) /
      t.grams,
    accuracyPp: (o.meanAccuracy - t.meanAccuracy) * 100,
  };
}

export interface CaseTable {
  readonly scenario: string;
  readonly zoneYear: string;
  readonly homeRegion: string;
  readonly regions: readonly string[];
  readonly durationMinutes: number;
  readonly rows: PolicyRow[];
}

/** a ÷ b; null when undefined (no such policy, or 0 ÷ 0: neither retrained), so medians skip it. */
const ratio = (a: number, b: number | undefined): number | null =>
  b === undefined || (a === 0 && b === 0) ? null : b > 0 ? a / b : Infinity;

export function tableOf(c: ReplayCase): CaseTable {
  const byName = new Map(c.outcomes.map((o) => [o.policy, o]));
  const nightly = byName.get('nightly');
  const threshold = byName.get('threshold');
  const rows = c.outcomes.map((o): PolicyRow => {
    let worstGap: number | null = null;
    if (nightly) {
      for (let i = 0; i < o.evaluations.length; i++) {
        const ours = o.evaluations[i].servedAccuracy;
        const theirs = nightly.evaluations[i]?.servedAccuracy;
        if (ours === null || theirs === null || theirs === undefined) continue;
        worstGap = Math.max(worstGap ?? -Infinity, (theirs - ours) * 100);
      }
    }
    return {
      policy: o.policy,
      retrains: o.runs.length,
      grams: o.grams,
      ratioToOracle: ratio(o.grams, o.oracleGrams),
      ratioToFairOracle: ratio(o.grams, o.fairOracleGrams),
      fairToHomeOracle: ratio(o.fairOracleGrams, o.homeOracleGrams),
      homeToOracle: ratio(o.homeOracleGrams, o.oracleGrams),
      ratioToNightly: ratio(o.grams, nightly?.grams),
      ratioToThreshold: ratio(o.grams, threshold?.grams),
      vsThreshold: thresholdSplit(o, threshold),
      meanAccuracy: o.meanAccuracy,
      worstGapToNightlyPp: worstGap,
      deadlineMisses: o.deadlineMisses,
      scheduler: o.scheduler,
      savingVsNightlyGrams: nightly ? nightly.grams - o.grams : null,
      pollerShareOfSaving:
        nightly && nightly.grams - o.grams > 0 ? o.scheduler.pollerGrams / (nightly.grams - o.grams) : null,
    };
  });
  return {
    scenario: c.scenario,
    zoneYear: zoneYearLabel(c.zoneYear),
    homeRegion: c.zoneYear.homeRegion,
    regions: c.zoneYear.regions,
    durationMinutes: c.durationMinutes,
    rows,
  };
}

const fixed = (value: number | null, digits: number): string =>
  value === null ? '-' : Number.isFinite(value) ? value.toFixed(digits) : 'inf';

export function formatCaseTable(t: CaseTable): string {
  const title =
    `${t.scenario} · ${t.zoneYear} · home ${t.homeRegion} · spatial ${t.regions.join(',')} · ` +
    `run ${t.durationMinutes} min\n`;
  return (
    title +
    formatTable(
      [
        'policy',
        'retrains',
        'gCO2eq',
        '÷oracle',
        '÷fair oracle',
        '÷nightly',
        '÷threshold',
        'mean acc',
        'worst gap pp',
        'misses',
      ],
      t.rows.map((r) => [
        r.policy,
        String(r.retrains),
        r.grams.toPrecision(3),
        fixed(r.ratioToOracle, 3),
        fixed(r.ratioToFairOracle, 3),
        fixed(r.ratioToNightly, 3),
        fixed(r.ratioToThreshold, 3),
        `${(r.meanAccuracy * 100).toFixed(2)} %`,
        fixed(r.worstGapToNightlyPp, 2),
        String(r.deadlineMisses),
      ]),
    )
  );
}

export function median(values: readonly number[]): number | null {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export interface PolicySummary {
  readonly policy: PolicyName;
  readonly medianRatioToOracle: number | null;
  readonly medianRatioToFairOracle: number | null;
  readonly medianFairToHomeOracle: number | null;
  readonly medianHomeToOracle: number | null;
  readonly medianRatioToNightly: number | null;
  readonly medianRatioToThreshold: number | null;
  /** Median over cases of (nightly − ours) mean accuracy, percentage points. */
  readonly medianMeanAccuracyGapPp: number | null;
  readonly worstMeanAccuracyGapPp: number | null;
  readonly deadlineMisses: number;
  /** Medians of the per-table ThresholdSplit factors, over the tables where both retrained. */
  readonly vsThreshold: { readonly [K in keyof ThresholdSplit]: number | null } & { readonly tables: number };
  readonly cases: number;
  /** Tables where the policy retrained at all: only those have emission ratios. */
  readonly casesWithRetrains: number;
  readonly scheduler: {
    readonly medianTrainingCpuSeconds: number | null;
    readonly medianEvaluatorCpuSeconds: number | null;
    readonly medianPollerCpuSeconds: number | null;
    readonly medianProviderPolls: number | null;
    readonly medianSkippedPolls: number | null;
    readonly medianTrainingGrams: number | null;
    readonly medianEvaluatorGrams: number | null;
    readonly medianPollerGrams: number | null;
    readonly medianSavingVsNightlyGrams: number | null;
    readonly medianPollerShareOfSaving: number | null;
    readonly worstPollerShareOfSaving: number | null;
  };
}

export function summarise(tables: readonly CaseTable[], policy: PolicyName): PolicySummary {
  const rows = tables.flatMap((t) => {
    const row = t.rows.find((r) => r.policy === policy);
    const nightly = t.rows.find((r) => r.policy === 'nightly');
    return row ? [{ row, gapPp: nightly ? (nightly.meanAccuracy - row.meanAccuracy) * 100 : null }] : [];
  });
  const gaps = rows.flatMap((r) => (r.gapPp === null ? [] : [r.gapPp]));
  const pick = (f: (r: PolicyRow) => number | null): number[] =>
    rows.flatMap(({ row }) => {
      const v = f(row);
      return v === null ? [] : [v];
    });
  return {
    policy,
    medianRatioToOracle: median(pick((r) => r.ratioToOracle)),
    medianRatioToFairOracle: median(pick((r) => r.ratioToFairOracle)),
    medianFairToHomeOracle: median(pick((r) => r.fairToHomeOracle)),
    medianHomeToOracle: median(pick((r) => r.homeToOracle)),
    medianRatioToNightly: median(pick((r) => r.ratioToNightly)),
    medianRatioToThreshold: median(pick((r) => r.ratioToThreshold)),
    medianMeanAccuracyGapPp: median(gaps),
    worstMeanAccuracyGapPp: gaps.length ? Math.max(...gaps) : null,
    deadlineMisses: rows.reduce((s, r) => s + r.row.deadlineMisses, 0),
    vsThreshold: {
      retrains: median(pick((r) => r.vsThreshold?.retrains ?? null)),
      energyPerRetrain: median(pick((r) => r.vsThreshold?.energyPerRetrain ?? null)),
      intensity: median(pick((r) => r.vsThreshold?.intensity ?? null)),
      ownDeadlineBound: median(pick((r) => r.vsThreshold?.ownDeadlineBound ?? null)),
      sevenDayBound: median(pick((r) => r.vsThreshold?.sevenDayBound ?? null)),
      immediateShare: median(pick((r) => r.vsThreshold?.immediateShare ?? null)),
      scheduleFloor: median(pick((r) => r.vsThreshold?.scheduleFloor ?? null)),
      accuracyPp: median(pick((r) => r.vsThreshold?.accuracyPp ?? null)),
      tables: pick((r) => r.vsThreshold?.retrains ?? null).length,
    },
    cases: rows.length,
    casesWithRetrains: rows.filter(({ row }) => row.retrains > 0).length,
    scheduler: {
      medianTrainingCpuSeconds: median(pick((r) => r.scheduler.trainingCpuSeconds)),
      medianEvaluatorCpuSeconds: median(pick((r) => r.scheduler.evaluatorCpuSeconds)),
      medianPollerCpuSeconds: median(pick((r) => r.scheduler.pollerCpuSeconds)),
      medianProviderPolls: median(pick((r) => r.scheduler.providerPolls)),
      medianSkippedPolls: median(pick((r) => r.scheduler.skippedPolls)),
      medianTrainingGrams: median(pick((r) => r.grams)),
      medianEvaluatorGrams: median(pick((r) => r.scheduler.evaluatorGrams)),
      medianPollerGrams: median(pick((r) => r.scheduler.pollerGrams)),
      medianSavingVsNightlyGrams: median(pick((r) => r.savingVsNightlyGrams)),
      medianPollerShareOfSaving: median(pick((r) => r.pollerShareOfSaving)),
      worstPollerShareOfSaving: Math.max(...pick((r) => r.pollerShareOfSaving), -Infinity),
    },
  };
}

const verdict = (value: number | null, limit: number): string =>
  value === null ? '' : value <= limit ? ' ✓' : ' ✗';

export function formatSummary(s: PolicySummary): string {
  return (
    `SUMMARY ${s.policy} (medians over ${s.cases} scenario×zone-year tables; emission ratios over the ` +
    `${s.casesWithRetrains} where it retrained): ` +
    `ours/fair oracle ${fixed(s.medianRatioToFairOracle, 3)} (target ≤ ${TARGETS.maxRatioToOracle}${verdict(s.medianRatioToFairOracle, TARGETS.maxRatioToOracle)}), ` +
    `ours/absolute oracle ${fixed(s.medianRatioToOracle, 3)}, ` +
    `ours/nightly ${fixed(s.medianRatioToNightly, 4)}, ` +
    `ours/threshold ${fixed(s.medianRatioToThreshold, 3)} (target ≤ ${TARGETS.maxRatioToThreshold}${verdict(s.medianRatioToThreshold, TARGETS.maxRatioToThreshold)}), ` +
    `mean-accuracy gap to nightly median ${fixed(s.medianMeanAccuracyGapPp, 2)} pp / worst ${fixed(s.worstMeanAccuracyGapPp, 2)} pp ` +
    `(target ≤ ${TARGETS.maxMeanAccuracyGapPp}${verdict(s.worstMeanAccuracyGapPp, TARGETS.maxMeanAccuracyGapPp)}), ` +
    `deadline misses ${s.deadlineMisses} (target ${TARGETS.maxDeadlineMisses}${verdict(s.deadlineMisses, TARGETS.maxDeadlineMisses)})\n`
  );
}

/** Where the absolute oracle's advantage comes from (medians of per-table ratios, so they need not multiply exactly). */
export function formatDecomposition(s: PolicySummary): string {
  return (
    `GAP ${s.policy}: ours/absolute oracle ${fixed(s.medianRatioToOracle, 3)} = ` +
    `forecast error (ours ÷ ours on perfect forecasts = fair oracle) ${fixed(s.medianRatioToFairOracle, 3)} × ` +
    `future beyond the forecast horizon (fair ÷ home-region oracle) ${fixed(s.medianFairToHomeOracle, 3)} × ` +
    `other regions (home-region oracle ÷ oracle) ${fixed(s.medianHomeToOracle, 3)}; ` +
    `retrain decision ×1 (every oracle plans the policy's own requests, none knows future batches)\n`
  );
}

/** Why ours ÷ threshold is what it is (medians of per-table factors, so they need not multiply exactly). */
export function formatThresholdSplit(s: PolicySummary): string {
  const v = s.vsThreshold;
  return (
    `VS THRESHOLD ${s.policy} (medians over the ${v.tables} tables where both retrained): ours/threshold ` +
    `${fixed(s.medianRatioToThreshold, 3)} = retrains ×${fixed(v.retrains, 3)} · energy per retrain ×${fixed(v.energyPerRetrain, 3)} · ` +
    `run-time intensity ×${fixed(v.intensity, 3)}; of it, refits run at once after a big drop ${fixed(v.immediateShare, 3)}; bound on the same requests within our deadline (perfect forecasts) ` +
    `${fixed(v.ownDeadlineBound, 3)}, in the home region with the threshold's 7-day wait (perfect knowledge) ` +
    `${fixed(v.sevenDayBound, 3)}, with the immediate refits as run and every other retrain at that 7-day bound ` +
    `${fixed(v.scheduleFloor, 3)}; mean accuracy ours − threshold ${fixed(v.accuracyPp, 2)} pp\n`
  );
}

const pct = (fraction: number | null): string =>
  fraction === null || !Number.isFinite(fraction) ? '-' : `${(fraction * 100).toPrecision(3)} %`;

/** The scheduler's own footprint beside the training it schedules (medians over the tables). */
export function formatSchedulerFootprint(s: PolicySummary): string {
  const f = s.scheduler;
  const worst = f.worstPollerShareOfSaving === -Infinity ? null : f.worstPollerShareOfSaving;
  return (
    `SCHEDULER ${s.policy} (per replayed period, medians over ${s.cases} tables, production size): ` +
    `training ${fixed(f.medianTrainingCpuSeconds, 1)} CPU s / ${fixed(f.medianTrainingGrams, 4)} g; ` +
    `evaluator ${fixed(f.medianEvaluatorCpuSeconds, 1)} CPU s / ${fixed(f.medianEvaluatorGrams, 4)} g; ` +
    `poller ${fixed(f.medianProviderPolls, 0)} provider polls (${fixed(f.medianSkippedPolls, 0)} skipped while waiting), ` +
    `${fixed(f.medianPollerCpuSeconds, 3)} CPU s / ${fixed(f.medianPollerGrams, 6)} g; ` +
    `saved vs nightly ${fixed(f.medianSavingVsNightlyGrams, 3)} g; ` +
    `poller ÷ saving median ${pct(f.medianPollerShareOfSaving)} / worst ${pct(worst)} ` +
    `(target ≤ ${TARGETS.maxPollerShareOfSaving * 100} %${verdict(worst, TARGETS.maxPollerShareOfSaving)})\n`
  );
}
