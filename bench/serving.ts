import { findAzureRegion } from '../shared/carbon/azureRegions';
import { intensityAt, loadTraceSeries } from '../shared/carbon/traceData';
import { table as formatTable } from '../shared/cli/table';
import { generateWeek } from '../shared/invoices/generator';
import { isHoldoutRow, trainFromRows } from '../shared/model/training';
import { CCF_AZURE_DSV3_EMBODIED } from '../shared/sci/embodied';
import { CCF_AZURE_ENERGY_COEFFICIENTS } from '../shared/sci/energy';
import { measuredCapacityProfile, type ReplicaSize } from '../shared/serving/capacityProfile';
import { hourlyLoadOf, syntheticArrivals } from '../shared/serving/loadTrace';
import { judgeRegions } from '../shared/serving/regionLatency';
import { replayServing, type ReplayPeriod, type ReplayResult } from '../shared/serving/servingReplay';
import { planServing, type ServingPlanInput } from '../shared/serving/servingPlanner';
import { TreeCountEvaluator } from '../shared/serving/treeCountAccuracy';
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

const HOME_REGION = 'westeurope';
const ALLOWED = ['westeurope', 'swedencentral', 'francecentral', 'germanywestcentral', 'norwayeast'];
const LATENCY_BUDGET_MS = 40;
const P99_SLO_MS = 500;
const MAX_ACCURACY_LOSS = 0.002;
const TODAY: ReplicaSize = { cpuCores: 1, memoryGb: 1.5 };
/** Container Apps' default cooldownPeriod for scale rules (learn.microsoft.com/azure/container-apps/scale-app). */
const COOLDOWN_SECONDS = 300;
const TIMEOUT_MS = 30_000;
const DAY_MS = 86_400_000;
const START_MS = Date.parse('2022-02-07T00:00:00Z'); // a Monday; the four weeks include February's month end
const DAYS = 28;

async function main(): Promise<void> {
  const flags = readFlags(process.argv.slice(2));
  const peak = Number(flags.get('peak-requests-per-hour') ?? 1200);
  const seed = Number(flags.get('seed') ?? 11);
  if (!(peak > 0) || !Number.isInteger(seed))
    throw new Error('--peak-requests-per-hour > 0, --seed an integer');
  const capacity = measuredCapacityProfile();
  const endMs = START_MS + DAYS * DAY_MS;

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
  const evaluator = new TreeCountEvaluator(trained.model);
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
  const meanIntensity = (region: string, fromMs: number, toMs: number): number => {
    let sum = 0;
    let n = 0;
    for (let t = fromMs; t < toMs; t += 3_600_000, n++) sum += intensity(region, t);
    return sum / n;
  };

  const planInput = (atMs: number, allowed: readonly string[], withTrees: boolean): ServingPlanInput => ({
    now: new Date(atMs).toISOString(),
    host: 'containerapps',
    homeRegion: HOME_REGION,
    allowedRegions: allowed,
    residency: 'EEA',
    latencyBudgetMs: LATENCY_BUDGET_MS,
    p99SloMs: P99_SLO_MS,
    maxAccuracyLoss: MAX_ACCURACY_LOSS,
    // Persistence forecast: the last week's mean, never the future the replay scores on.
    intensityGramsPerKwh: Object.fromEntries(
      allowed.map((r) => [r, meanIntensity(r, Math.max(START_MS - 7 * DAY_MS, atMs - 7 * DAY_MS), atMs)]),
    ),
    load: atMs > START_MS ? hourlyLoadOf(arrivals, Math.max(START_MS, atMs - 7 * DAY_MS), atMs) : [],
    capacity,
    treeAccuracy: withTrees ? treeAccuracy : null,
    fallbackSize: TODAY,
  });

  const fullTrees = capacity.model.fullTrees;
  const whole = (p: Omit<ReplayPeriod, 'fromMs' | 'toMs'>): ReplayPeriod[] => [
    { ...p, fromMs: START_MS, toMs: endMs },
  ];
  const eligible = judgeRegions({
    homeRegion: HOME_REGION,
    allowedRegions: ALLOWED,
    residency: 'EEA',
    latencyBudgetMs: LATENCY_BUDGET_MS,
  }).filter((r) => r.kind === 'eligible');
  const greenest = eligible
    .map((r) => ({ ...r, mean: meanIntensity(r.region, START_MS - 7 * DAY_MS, START_MS) }))
    .sort((a, b) => a.mean - b.mean)[0];
  // Right-sized: the planner's size for the home region and the full model, decided after week 1.
  const homeOnly = planServing(planInput(START_MS + 7 * DAY_MS, [HOME_REGION], false));
  const rightSize = homeOnly.size;

  const plannerPeriods: ReplayPeriod[] = [];
  const planLog: string[] = [];
  for (let day = 0; day < DAYS; day++) {
    const fromMs = START_MS + day * DAY_MS;
    const plan = planServing(planInput(fromMs, ALLOWED, true));
    plannerPeriods.push({
      fromMs,
      toMs: fromMs + DAY_MS,
      label: plan.kind,
      region: plan.region,
      rttMs: plan.rttMs,
      size: plan.size,
      trees: plan.trees.trees ?? fullTrees,
      scaling:
        plan.scaling.kind === 'scale-to-zero'
          ? { kind: 'scale-to-zero', cooldownSeconds: COOLDOWN_SECONDS }
          : { kind: 'always-on' },
    });
    if (day < 2 || day === DAYS - 1) {
      planLog.push(
        `${new Date(fromMs).toISOString().slice(0, 10)}: ${plan.kind} ${plan.region} ${plan.size.cpuCores} vCPU/${plan.size.memoryGb} GB, ` +
          `${plan.trees.trees ?? fullTrees} trees, ${plan.scaling.kind}` +
          (plan.kind === 'planned' ? ` (peak ${plan.peakRowsPerSecond} rows/s)` : ` (${plan.reason})`),
      );
    }
  }

  const options = {
    capacity,
    p99SloMs: P99_SLO_MS,
    timeoutMs: TIMEOUT_MS,
    intensityAt: intensity,
    coefficients: { ...CCF_AZURE_ENERGY_COEFFICIENTS, ...CCF_AZURE_DSV3_EMBODIED },
    seed,
  };
  const rowsOut: { name: string; result: ReplayResult }[] = [];
  const run = (name: string, periods: ReplayPeriod[]): void => {
    rowsOut.push({ name, result: replayServing(arrivals, periods, options) });
  };
  const base = { label: '', rttMs: 0, trees: fullTrees };
  run(
    `baseline: always-on ACI ${HOME_REGION} 1 vCPU/1.5 GB`,
    whole({ ...base, region: HOME_REGION, size: TODAY, scaling: { kind: 'always-on' } }),
  );
  run(
    `always-on greenest (${greenest.region})`,
    whole({
      ...base,
      region: greenest.region,
      rttMs: greenest.rttMs,
      size: TODAY,
      scaling: { kind: 'always-on' },
    }),
  );
  run(
    `right-sized always-on ${rightSize.cpuCores} vCPU/${rightSize.memoryGb} GB`,
    whole({ ...base, region: HOME_REGION, size: rightSize, scaling: { kind: 'always-on' } }),
  );
  run(
    'scale-to-zero 1 vCPU/1.5 GB',
    whole({
      ...base,
      region: HOME_REGION,
      size: TODAY,
      scaling: { kind: 'scale-to-zero', cooldownSeconds: COOLDOWN_SECONDS },
    }),
  );
  run('planner (daily re-plan)', plannerPeriods);

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
