import { findAzureRegion } from '../shared/carbon/azureRegions';
import { loadSettings } from '../shared/config';
import { intensityAt, loadTraceSeries } from '../shared/carbon/traceData';
import { table as formatTable } from '../shared/cli/table';
import { generateWeek } from '../shared/invoices/generator';
import { isHoldoutRow, trainFromRows } from '../shared/model/training';
import { measuredCapacityProfile, type ReplicaSize } from '../shared/serving/capacityProfile';
import { syntheticArrivals } from '../shared/serving/loadTrace';
import { compareServingPlans, describePlan } from '../shared/serving/servingComparison';
import { TreeCountEvaluator } from '../shared/serving/treeCountAccuracy';
import { legacyPredictor } from '../shared/pipelines/multiScoring';
import { readFlags } from './support/childRun';

/**
 * Serving benchmark: four weeks of a SYNTHETIC, seeded request-load trace (shared/serving/loadTrace.ts:
 * business-hours diurnal and weekly shape, month-end bursts) replayed on the bundled real 2022 carbon
 * traces of every allowed region, for five ways of serving, side by side in one run. Latencies come
 * from the measured capacity profile (shared/serving/data/capacityProfile.json) plus the published
 * P95 RTT; the tree-count accuracy is measured in this run on a freshly trained forest's held-out rows.
 *
 *   npm run bench:serving -- [--peak-requests-per-hour 1200] [--seed 11]
 */

// The project's settings (defaults, or overridden from the environment) decide the plan, as in production.
const SETTINGS = loadSettings({
  ...process.env,
  DataStorage: process.env.DataStorage ?? 'UseDevelopmentStorage=true',
});
const HOME_REGION = SETTINGS.HOME_REGION;
const ALLOWED = SETTINGS.ALLOWED_REGIONS;
const RESIDENCY = SETTINGS.DATA_RESIDENCY;
const LATENCY_BUDGET_MS = SETTINGS.SERVING_LATENCY_BUDGET_MS;
const P99_SLO_MS = SETTINGS.SERVING_P99_SLO_MS;
const MAX_ACCURACY_LOSS = SETTINGS.SERVING_MAX_ACCURACY_LOSS;
/** Today's model API: MODEL_API_CPU_CORES / MODEL_API_MEMORY_GB on ACI, always on. */
const TODAY: ReplicaSize = { cpuCores: SETTINGS.MODEL_API_CPU_CORES, memoryGb: SETTINGS.MODEL_API_MEMORY_GB };
const START_MS = Date.parse('2022-02-07T00:00:00Z'); // a Monday; the four weeks include February's month end
const DAYS = 28;

async function main(): Promise<void> {
  const flags = readFlags(process.argv.slice(2));
  const peak = Number(flags.get('peak-requests-per-hour') ?? 1200);
  const seed = Number(flags.get('seed') ?? 11);
  if (!(peak > 0) || !Number.isInteger(seed))
    throw new Error('--peak-requests-per-hour > 0, --seed an integer');
  const capacity = measuredCapacityProfile();

  process.stderr.write(`training ${capacity.model.fullTrees} trees to measure accuracy by tree count...\n`);
  const rows = [...generateWeek({ scenario: 'stable', weeks: 2, rowsPerWeek: 20_000, seed: 41 }, 0)];
  const trained = await trainFromRows(rows, {
    trees: capacity.model.fullTrees,
    maxFeatures: 'sqrt',
    minSamplesLeaf: 1,
    maxDepth: 32,
    seed: 41,
    modelName: 'vat-rate',
    versionId: 'bench-serving',
  });
  const evaluator = new TreeCountEvaluator(legacyPredictor(trained.model));
  for (const row of generateWeek({ scenario: 'stable', weeks: 2, rowsPerWeek: 20_000, seed: 41 }, 1)) {
    if (isHoldoutRow(row.invoiceId)) evaluator.add(row);
  }
  const treeAccuracy = evaluator.result();

  const arrivals = syntheticArrivals({
    startMs: START_MS,
    hours: DAYS * 24,
    seed,
    peakRequestsPerHour: peak,
  });
  const series = new Map(
    ALLOWED.map((r) => [r, loadTraceSeries(findAzureRegion(r)?.traceZone ?? 'missing')] as const),
  );
  const intensity = (region: string, ms: number): number => {
    const s = series.get(region);
    if (!s) throw new Error(`no trace for ${region}`);
    return intensityAt(s, ms);
  };
  const comparison = compareServingPlans({
    homeRegion: HOME_REGION,
    allowedRegions: ALLOWED,
    residency: RESIDENCY,
    latencyBudgetMs: LATENCY_BUDGET_MS,
    p99SloMs: P99_SLO_MS,
    maxAccuracyLoss: MAX_ACCURACY_LOSS,
    todaySize: TODAY,
    fromMs: START_MS,
    days: DAYS,
    arrivalsMs: arrivals,
    capacity,
    treeAccuracy,
    intensityAt: intensity,
    seed,
  });
  const rowsOut = comparison.rows;
  const planLog = comparison.dailyPlans
    .filter((_, day) => day < 2 || day === DAYS - 1)
    .map(({ day, plan }) => `${day}: ${describePlan(plan)}`);
  const fullTrees = treeAccuracy.fullTrees;
  const baseline = rowsOut[0].result;
  const fmt = (v: number | null, digits = 3): string =>
    v === null || !Number.isFinite(v) ? '-' : v.toFixed(digits);
  process.stdout.write(
    `bench:serving — ${DAYS} days from ${new Date(START_MS).toISOString().slice(0, 10)}, synthetic load (seed ${seed}, ` +
      `peak ${peak} req/h), real 2022 carbon traces, SLO p99 ${P99_SLO_MS} ms, RTT budget ${LATENCY_BUDGET_MS} ms\n`,
  );
  process.stdout.write(
    `accuracy by trees (held-out ${treeAccuracy.holdoutRows} rows): ` +
      [1, 2, 3, 5, 10, 20, fullTrees]
        .filter((k) => k <= fullTrees)
        .map((k) => `${k}: ${(treeAccuracy.points[k - 1].accuracy * 100).toFixed(2)} %`)
        .join(', ') +
      '\n',
  );
  process.stdout.write(`planner decisions: \n  ${planLog.join('\n  ')}\n\n`);
  process.stdout.write(
    formatTable(
      [
        'configuration',
        'requests',
        'gCO2e total',
        'op',
        'emb',
        'g/1k pred',
        '÷ baseline',
        'replica-h',
        'p50 ms',
        'p99 ms',
        'over SLO',
        'failed',
        'cold starts',
      ],
      rowsOut.map(({ name, result: r }) => [
        name,
        String(r.requests),
        fmt(r.totalGrams, 1),
        fmt(r.grams.operationalGrams, 1),
        fmt(r.grams.embodiedGrams, 1),
        fmt(r.gramsPer1000Predictions),
        fmt(r.totalGrams / baseline.totalGrams),
        fmt(r.replicaSeconds / 3600, 1),
        fmt(r.p50Ms, 1),
        fmt(r.p99Ms, 1),
        `${r.overSlo} (${fmt((100 * r.overSlo) / Math.max(1, r.requests), 3)} %)`,
        String(r.failed),
        String(r.coldStarts),
      ]),
    ) + '\n',
  );
  const planner = rowsOut[rowsOut.length - 1].result;
  const ratio = planner.totalGrams / baseline.totalGrams;
  const overPct = (100 * planner.overSlo) / Math.max(1, planner.requests);
  process.stdout.write(
    `\nplanner ÷ baseline emissions: ${ratio.toFixed(4)} (target ≤ 0.1 ${ratio <= 0.1 ? '✓' : '✗'}); ` +
      `requests over SLO: ${overPct.toFixed(3)} % (target ≤ 0.1 % ${overPct <= 0.1 ? '✓' : '✗'}); ` +
      `failed: ${planner.failed} (target 0 ${planner.failed === 0 ? '✓' : '✗'})\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:serving failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
