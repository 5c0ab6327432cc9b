import type { ResidencyRule } from '../carbon/azureRegions';
import {
  ACI_SIZES,
  CONTAINER_APPS_SIZES,
  sizedCapacity,
  type CapacityProfile,
  type ReplicaSize,
  type SizedCapacity,
} from './capacityProfile';
import { busyHoursOfWeek, judgeLoadHistory, hourOfWeekUtc, type HourlyLoad } from './loadHistory';
import { judgeRegions, type RegionCandidate } from './regionLatency';
import { smallestTreeCountWithin, type TreeCountAccuracy, type TreeCountChoice } from './treeCountAccuracy';

/**
 * The serving planner: where (greenest region within residency and the RTT budget), how big (the
 * smallest replica that serves the observed peak within the p99 SLO, from the measured capacity
 * profile), which model (fewest trees within the allowed accuracy loss) and when (scale to zero on
 * Container Apps and locally; a weekly on/off schedule for ACI). Pure: every input is passed in, so
 * the orchestrator, `npm start` and the benchmark run the same decisions.
 */
export type ModelApiHost = 'containerapps' | 'aci' | 'local';

export interface ServingPlanInput {
  readonly now: string;
  readonly host: ModelApiHost;
  readonly homeRegion: string;
  readonly allowedRegions: readonly string[];
  readonly residency: ResidencyRule;
  readonly latencyBudgetMs: number;
  readonly p99SloMs: number;
  readonly maxAccuracyLoss: number;
  /** Expected grid intensity per region for the coming plan period (e.g. the forecast mean). */
  readonly intensityGramsPerKwh: Readonly<Record<string, number>>;
  /** Raw hourly load history; judged here. */
  readonly load: unknown;
  readonly capacity: CapacityProfile;
  /** Held-out accuracy of the champion by tree count; null when not measured. */
  readonly treeAccuracy: TreeCountAccuracy | null;
  /** Today's always-on configuration: what the safe fallback keeps. */
  readonly fallbackSize: ReplicaSize;
}

export type ServingScaling =
  | {
      kind: 'scale-to-zero';
      minReplicas: 0;
      maxReplicas: number;
      /** Container Apps HTTP scale rule: concurrent requests per replica before another is added. */
      concurrentRequestsPerReplica: number;
    }
  | {
      kind: 'scheduled';
      /** ACI group running in these hours of the week (0 = Monday 00 UTC), stopped otherwise. */
      activeHoursOfWeekUtc: number[];
    }
  | { kind: 'always-on' };

export interface PlannedServing {
  readonly kind: 'planned';
  readonly host: ModelApiHost;
  readonly region: string;
  readonly rttMs: number;
  readonly size: ReplicaSize;
  readonly trees: TreeCountChoice;
  readonly scaling: ServingScaling;
  readonly peakRowsPerSecond: number;
  /** p99.9 at the planned load on this size (from the measured profile), plus the RTT from the home region. */
  readonly expectedP999Ms: number;
  readonly regions: RegionCandidate[];
  readonly reasons: string[];
}

export interface SafeAlwaysOn {
  readonly kind: 'always-on-fallback';
  readonly host: ModelApiHost;
  readonly region: string;
  readonly rttMs: 0;
  readonly size: ReplicaSize;
  readonly trees: { kind: 'all-trees'; trees: number | null; reason: string };
  readonly scaling: { kind: 'always-on' };
  readonly reason: string;
}

export type ServingPlan = PlannedServing | SafeAlwaysOn;

/** Hours of load the planner needs: a day for sizing, a week to schedule ACI by hour of week. */
export const MIN_LOAD_HOURS = { containerapps: 24, local: 24, aci: 168 } as const;
export const MAX_LOAD_AGE_HOURS = 48;

export function planServing(input: ServingPlanInput): ServingPlan {
  const fallback = (reason: string): SafeAlwaysOn => ({
    kind: 'always-on-fallback',
    host: input.host,
    region: input.homeRegion.toLowerCase(),
    rttMs: 0,
    size: input.fallbackSize,
    trees: {
      kind: 'all-trees',
      trees: input.treeAccuracy?.fullTrees ?? null,
      reason: 'fallback serves the full model',
    },
    scaling: { kind: 'always-on' },
    reason,
  });

  const load = judgeLoadHistory(input.load, {
    now: input.now,
    minHours: MIN_LOAD_HOURS[input.host],
    maxAgeHours: MAX_LOAD_AGE_HOURS,
  });
  if (load.kind === 'unusable') return fallback(`load data unusable: ${load.reason}`);

  const regions = judgeRegions(input);
  const scored = regions
    .filter((r): r is Extract<RegionCandidate, { kind: 'eligible' }> => r.kind === 'eligible')
    .map((r) => ({ ...r, gramsPerKwh: input.intensityGramsPerKwh[r.region] }))
    .filter((r) => Number.isFinite(r.gramsPerKwh) && r.gramsPerKwh >= 0)
    .sort((a, b) => a.gramsPerKwh - b.gramsPerKwh || a.rttMs - b.rttMs);
  const where = scored[0];
  if (!where)
    return fallback('no allowed region fits residency and the latency budget with a known intensity');

  const trees: TreeCountChoice = input.treeAccuracy
    ? smallestTreeCountWithin(input.treeAccuracy, input.maxAccuracyLoss)
    : {
        kind: 'all-trees',
        trees: input.capacity.model.fullTrees,
        accuracy: Number.NaN,
        fullAccuracy: Number.NaN,
        fullTrees: input.capacity.model.fullTrees,
        reason: 'no held-out accuracy by tree count recorded for this version',
      };

  const sizes = input.host === 'aci' ? ACI_SIZES : CONTAINER_APPS_SIZES;
  const options = sizes.map((size) =>
    sizedCapacity(input.capacity, trees.trees, size, input.p99SloMs, where.rttMs),
  );
  const fitting = options.filter((o) => o.fitsMemory && o.rowsPerSecondWithinSlo > 0);
  if (fitting.length === 0) {
    return fallback(
      `no replica size meets the ${input.p99SloMs} ms p99 SLO with ${where.rttMs} ms RTT to ${where.region}`,
    );
  }
  const single = fitting.find((o) => o.rowsPerSecondWithinSlo >= load.peakRowsPerSecond);
  const chosen: SizedCapacity = single ?? fitting[fitting.length - 1];
  const replicasForPeak = Math.max(1, Math.ceil(load.peakRowsPerSecond / chosen.rowsPerSecondWithinSlo));

  const reasons = [
    `${where.region}: lowest expected intensity (${where.gramsPerKwh.toFixed(0)} g/kWh) of ${scored.length} eligible region(s), P95 RTT ${where.rttMs} ms from ${input.homeRegion}`,
    `${chosen.size.cpuCores} vCPU / ${chosen.size.memoryGb} GB serves ${chosen.rowsPerSecondWithinSlo.toFixed(0)} rows/s with p99.9 + RTT within ${input.p99SloMs} ms (peak ${load.peakRowsPerSecond} rows/s)`,
    trees.kind === 'fewer-trees'
      ? `${trees.trees} of ${trees.fullTrees} trees: ${(trees.accuracy * 100).toFixed(2)} % vs ${(trees.fullAccuracy * 100).toFixed(2)} % held-out`
      : `all ${trees.trees} trees: ${trees.reason}`,
  ];
  let scaling: ServingScaling;
  if (input.host === 'aci') {
    const active = activeHoursWithPrewarm(load.hours);
    scaling = { kind: 'scheduled', activeHoursOfWeekUtc: active };
    reasons.push(
      `ACI runs ${active.length} of 168 hours a week (hours with observed load, each with the hour before)`,
    );
  } else {
    scaling = {
      kind: 'scale-to-zero',
      minReplicas: 0,
      maxReplicas: replicasForPeak + 1,
      concurrentRequestsPerReplica: Math.max(
        1,
        Math.ceil((chosen.rowsPerSecondWithinSlo * chosen.p99Ms) / 1000),
      ),
    };
    reasons.push('scale to zero when idle; one replica above the peak need for bursts');
  }
  return {
    kind: 'planned',
    host: input.host,
    region: where.region,
    rttMs: where.rttMs,
    size: chosen.size,
    trees,
    scaling,
    peakRowsPerSecond: load.peakRowsPerSecond,
    expectedP999Ms: chosen.p999Ms + where.rttMs,
    regions,
    reasons,
  };
}

/** Busy hours of the week plus the hour before each, so a stopped ACI group is started ahead of load. */
function activeHoursWithPrewarm(hours: readonly HourlyLoad[]): number[] {
  const busy = busyHoursOfWeek(hours);
  const active = new Set<number>();
  for (const h of busy) {
    active.add(h);
    active.add((h + 167) % 168);
  }
  return [...active].sort((a, b) => a - b);
}

/** Whether a scheduled ACI plan keeps the group running at `ms`. */
export function scheduledActiveAt(
  scaling: Extract<ServingScaling, { kind: 'scheduled' }>,
  ms: number,
): boolean {
  return scaling.activeHoursOfWeekUtc.includes(hourOfWeekUtc(ms));
}
