import { findAzureRegion } from '../carbon/azureRegions';
import { intensityAt, loadTraceSeries, type TraceSeries } from '../carbon/traceData';
import { TraceProvider } from '../carbon/traceProvider';
import type { Settings } from '../config';
import type { PipelineContext } from '../pipeline/context';
import { recordedTreeAccuracy } from '../pipeline/servingPlanning';
import { measuredCapacityProfile } from './capacityProfile';
import { syntheticArrivals } from './loadTrace';
import { compareServingPlans, describePlan, type ServingComparison } from './servingComparison';
import type { TreeCountAccuracy } from './treeCountAccuracy';

/**
 * The serving half of the `npm start` summary: the planner run over the demo period on a seeded,
 * SYNTHETIC business-hours request load (the demo has no real callers), with the champion's own
 * accuracy by tree count measured on its held-out rows, and its emissions against today's
 * always-on model API, on the bundled carbon traces of the allowed regions.
 */
export const DEMO_PEAK_REQUESTS_PER_HOUR = 1200;
const DEMO_LOAD_SEED = 11;
const DAY_MS = 86_400_000;

/** Held-out accuracy of the champion's first k trees, as recorded with its version. */
export async function championTreeAccuracy(
  ctx: PipelineContext,
  modelName: string,
): Promise<TreeCountAccuracy | null> {
  const champion = await ctx.registry.getChampion(modelName);
  if (!champion) return null;
  return recordedTreeAccuracy(ctx, modelName, champion.pointer.versionId);
}

export interface ServingDemoSummary {
  readonly comparison: ServingComparison;
  readonly treeAccuracy: TreeCountAccuracy | null;
  readonly lines: string[];
}

export async function servingDemoSummary(
  ctx: PipelineContext,
  settings: Settings,
  period: { fromMs: number; toMs: number },
): Promise<ServingDemoSummary> {
  const treeAccuracy = await championTreeAccuracy(ctx, settings.MODEL_NAME);
  const trace = new TraceProvider({
    year: settings.CARBON_TRACE_YEAR,
    forecastMode: 'perfect',
    seed: 1,
    now: () => new Date(),
  });
  const series = new Map<string, TraceSeries>();
  for (const region of settings.ALLOWED_REGIONS) {
    const zone = findAzureRegion(region)?.traceZone;
    if (zone) series.set(region, loadTraceSeries(zone));
  }
  const allowed = settings.ALLOWED_REGIONS.filter((r) => series.has(r));
  const days = Math.max(1, Math.floor((period.toMs - period.fromMs) / DAY_MS));
  const arrivalsMs = syntheticArrivals({
    startMs: period.fromMs,
    hours: days * 24,
    seed: DEMO_LOAD_SEED,
    peakRequestsPerHour: DEMO_PEAK_REQUESTS_PER_HOUR,
  });
  const comparison = compareServingPlans({
    homeRegion: settings.HOME_REGION,
    allowedRegions: allowed.includes(settings.HOME_REGION) ? allowed : [settings.HOME_REGION, ...allowed],
    residency: settings.DATA_RESIDENCY,
    latencyBudgetMs: settings.SERVING_LATENCY_BUDGET_MS,
    p99SloMs: settings.SERVING_P99_SLO_MS,
    maxAccuracyLoss: settings.SERVING_MAX_ACCURACY_LOSS,
    todaySize: { cpuCores: settings.MODEL_API_CPU_CORES, memoryGb: settings.MODEL_API_MEMORY_GB },
    fromMs: period.fromMs,
    days,
    arrivalsMs,
    capacity: measuredCapacityProfile(),
    treeAccuracy,
    intensityAt: (region, ms) => {
      const s = series.get(region) ?? loadTraceSeries(findAzureRegion(region)?.traceZone ?? region);
      return intensityAt(s, trace.traceTimeMs(ms));
    },
    seed: DEMO_LOAD_SEED,
  });
  const baseline = comparison.rows.find((r) => r.key === 'baseline')?.result;
  const planner = comparison.rows.find((r) => r.key === 'planner')?.result;
  const lines: string[] = [
    `Serving (${days} days, synthetic business-hours load, seed ${DEMO_LOAD_SEED}, peak ${DEMO_PEAK_REQUESTS_PER_HOUR} requests/h; SLO p99 ${settings.SERVING_P99_SLO_MS} ms, RTT budget ${settings.SERVING_LATENCY_BUDGET_MS} ms)`,
  ];
  if (treeAccuracy) {
    const full = treeAccuracy.points[treeAccuracy.points.length - 1];
    lines.push(
      `  champion held-out accuracy: ${(full.accuracy * 100).toFixed(2)} % with ${full.trees} trees on ${treeAccuracy.holdoutRows} rows`,
    );
  }
  const first = comparison.dailyPlans[0];
  const last = comparison.dailyPlans[comparison.dailyPlans.length - 1];
  if (first) lines.push(`  plan ${first.day}: ${describePlan(first.plan)}`);
  if (last && last !== first) lines.push(`  plan ${last.day}: ${describePlan(last.plan)}`);
  lines.push(
    '  configuration                                     gCO2e      g/1k pred  replica-h  p99 ms  over SLO  cold starts',
  );
  for (const { name, result: r } of comparison.rows) {
    lines.push(
      `  ${name.padEnd(49)} ${r.totalGrams.toFixed(1).padStart(9)}  ${(r.gramsPer1000Predictions?.toFixed(3) ?? '-').padStart(9)}  ${(r.replicaSeconds / 3600).toFixed(1).padStart(9)}  ${r.p99Ms.toFixed(0).padStart(6)}  ${String(r.overSlo).padStart(8)}  ${String(r.coldStarts).padStart(11)}`,
    );
  }
  if (baseline && planner && baseline.totalGrams > 0) {
    const saving = 1 - planner.totalGrams / baseline.totalGrams;
    lines.push(
      `  planner vs always-on: ${planner.totalGrams.toFixed(1)} vs ${baseline.totalGrams.toFixed(1)} gCO2e (saving ${(saving * 100).toFixed(1)} %), ` +
        `${planner.coldStarts} cold starts (median ${planner.coldStartP50Ms?.toFixed(0) ?? '-'} ms, measured locally)`,
    );
  }
  return { comparison, treeAccuracy, lines };
}
