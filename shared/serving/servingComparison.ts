import type { ResidencyRule } from '../carbon/azureRegions';
import { CCF_AZURE_DSV3_EMBODIED } from '../sci/embodied';
import { CCF_AZURE_ENERGY_COEFFICIENTS } from '../sci/energy';
import type { CapacityProfile, ReplicaSize } from './capacityProfile';
import { hourlyLoadOf } from './loadTrace';
import { judgeRegions } from './regionLatency';
import { replayServing, type ReplayPeriod, type ReplayResult } from './servingReplay';
import { planServing, type ServingPlan } from './servingPlanner';
import type { TreeCountAccuracy } from './treeCountAccuracy';

/**
 * Five ways to serve the same requests, replayed side by side: today's always-on ACI in the home
 * region (the baseline), always-on in the greenest allowed region, right-sized always-on, scale to
 * zero at today's size, and the planner re-planning every day from the load it has seen so far and
 * the last week's intensity (a persistence forecast: it never sees the future it is scored on).
 * `bench:serving` prints all five; `npm start` prints the planner against the baseline.
 */
export interface ServingComparisonInput {
  readonly homeRegion: string;
  readonly allowedRegions: readonly string[];
  readonly residency: ResidencyRule;
  readonly latencyBudgetMs: number;
  readonly p99SloMs: number;
  readonly maxAccuracyLoss: number;
  readonly todaySize: ReplicaSize;
  readonly fromMs: number;
  readonly days: number;
  readonly arrivalsMs: Float64Array;
  readonly capacity: CapacityProfile;
  readonly treeAccuracy: TreeCountAccuracy | null;
  readonly intensityAt: (region: string, ms: number) => number;
  readonly seed: number;
}

export interface ServingComparison {
  readonly rows: { name: string; key: ComparisonKey; result: ReplayResult }[];
  readonly dailyPlans: { day: string; plan: ServingPlan }[];
}

export type ComparisonKey = 'baseline' | 'greenest' | 'right-sized' | 'scale-to-zero' | 'planner';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** Container Apps' default cooldownPeriod for scale rules (learn.microsoft.com/azure/container-apps/scale-app). */
export const CONTAINER_APPS_COOLDOWN_SECONDS = 300;
const TIMEOUT_MS = 30_000;

export function compareServingPlans(input: ServingComparisonInput): ServingComparison {
  const endMs = input.fromMs + input.days * DAY_MS;
  const meanIntensity = (region: string, fromMs: number, toMs: number): number => {
    let sum = 0;
    let n = 0;
    for (let t = fromMs; t < toMs; t += HOUR_MS, n++) sum += input.intensityAt(region, t);
    return n > 0 ? sum / n : Number.NaN;
  };
  const lastWeek = (atMs: number): Record<string, number> =>
    Object.fromEntries(input.allowedRegions.map((r) => [r, meanIntensity(r, atMs - 7 * DAY_MS, atMs)]));
  const plan = (atMs: number, allowed: readonly string[], withTrees: boolean): ServingPlan =>
    planServing({
      now: new Date(atMs).toISOString(),
      host: 'containerapps',
      homeRegion: input.homeRegion,
      allowedRegions: allowed,
      residency: input.residency,
      latencyBudgetMs: input.latencyBudgetMs,
      p99SloMs: input.p99SloMs,
      maxAccuracyLoss: input.maxAccuracyLoss,
      intensityGramsPerKwh: lastWeek(atMs),
      load:
        atMs > input.fromMs
          ? hourlyLoadOf(input.arrivalsMs, Math.max(input.fromMs, atMs - 7 * DAY_MS), atMs)
          : [],
      capacity: input.capacity,
      treeAccuracy: withTrees ? input.treeAccuracy : null,
      fallbackSize: input.todaySize,
    });

  const fullTrees = input.treeAccuracy?.fullTrees ?? input.capacity.model.fullTrees;
  const whole = (p: Omit<ReplayPeriod, 'fromMs' | 'toMs' | 'label' | 'trees'>): ReplayPeriod[] => [
    { ...p, label: '', trees: fullTrees, fromMs: input.fromMs, toMs: endMs },
  ];
  const greenest = judgeRegions(input)
    .filter((r) => r.kind === 'eligible')
    .map((r) => ({ ...r, mean: meanIntensity(r.region, input.fromMs - 7 * DAY_MS, input.fromMs) }))
    .sort((a, b) => a.mean - b.mean)[0] ?? { region: input.homeRegion, rttMs: 0 };
  // Right-sized: the planner's size for the home region and the full model, after the first day.
  const rightSize = plan(input.fromMs + Math.min(input.days, 7) * DAY_MS, [input.homeRegion], false).size;

  const dailyPlans: ServingComparison['dailyPlans'] = [];
  const plannerPeriods: ReplayPeriod[] = [];
  for (let day = 0; day < input.days; day++) {
    const fromMs = input.fromMs + day * DAY_MS;
    const p = plan(fromMs, input.allowedRegions, true);
    dailyPlans.push({ day: new Date(fromMs).toISOString().slice(0, 10), plan: p });
    plannerPeriods.push({
      fromMs,
      toMs: fromMs + DAY_MS,
      label: p.kind,
      region: p.region,
      rttMs: p.rttMs,
      size: p.size,
      trees: p.trees.trees ?? fullTrees,
      scaling:
        p.scaling.kind === 'scale-to-zero'
          ? { kind: 'scale-to-zero', cooldownSeconds: CONTAINER_APPS_COOLDOWN_SECONDS }
          : { kind: 'always-on' },
    });
  }

  const options = {
    capacity: input.capacity,
    p99SloMs: input.p99SloMs,
    timeoutMs: TIMEOUT_MS,
    intensityAt: input.intensityAt,
    coefficients: { ...CCF_AZURE_ENERGY_COEFFICIENTS, ...CCF_AZURE_DSV3_EMBODIED },
    seed: input.seed,
  };
  const today = `${input.todaySize.cpuCores} vCPU/${input.todaySize.memoryGb} GB`;
  const configurations: { name: string; key: ComparisonKey; periods: ReplayPeriod[] }[] = [
    {
      name: `baseline: always-on ACI ${input.homeRegion} ${today}`,
      key: 'baseline',
      periods: whole({
        region: input.homeRegion,
        rttMs: 0,
        size: input.todaySize,
        scaling: { kind: 'always-on' },
      }),
    },
    {
      name: `always-on greenest (${greenest.region})`,
      key: 'greenest',
      periods: whole({
        region: greenest.region,
        rttMs: greenest.rttMs,
        size: input.todaySize,
        scaling: { kind: 'always-on' },
      }),
    },
    {
      name: `right-sized always-on ${rightSize.cpuCores} vCPU/${rightSize.memoryGb} GB`,
      key: 'right-sized',
      periods: whole({ region: input.homeRegion, rttMs: 0, size: rightSize, scaling: { kind: 'always-on' } }),
    },
    {
      name: `scale-to-zero ${today}`,
      key: 'scale-to-zero',
      periods: whole({
        region: input.homeRegion,
        rttMs: 0,
        size: input.todaySize,
        scaling: { kind: 'scale-to-zero', cooldownSeconds: CONTAINER_APPS_COOLDOWN_SECONDS },
      }),
    },
    { name: 'planner (daily re-plan)', key: 'planner', periods: plannerPeriods },
  ];
  return {
    rows: configurations.map((c) => ({
      name: c.name,
      key: c.key,
      result: replayServing(input.arrivalsMs, c.periods, options),
    })),
    dailyPlans,
  };
}

/** One line per plan: what it chose and why (the fallback's reason when it fell back). */
export function describePlan(plan: ServingPlan): string {
  const size = `${plan.size.cpuCores} vCPU/${plan.size.memoryGb} GB`;
  const trees = plan.trees.trees === null ? 'all trees' : `${plan.trees.trees} trees`;
  if (plan.kind === 'always-on-fallback')
    return `always-on ${plan.region} ${size}, ${trees} (fallback: ${plan.reason})`;
  return `${plan.region} (+${plan.rttMs} ms RTT) ${size}, ${trees}, ${plan.scaling.kind}, peak ${plan.peakRowsPerSecond} rows/s, p99.9 ≈ ${plan.expectedP999Ms.toFixed(0)} ms`;
}
