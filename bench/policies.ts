import { writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { z } from 'zod';
import { ProgressBar } from '../shared/cli/progress';
import { loadSettings } from '../shared/config';
import { describeError } from '../shared/errors';
import { SCENARIOS, type ScenarioName } from '../shared/invoices/generator';
import { thresholdsFromSettings } from '../shared/policy/retrainDecision';
import { POLICY_NAMES } from '../shared/policy/schedulingPolicies';
import { TRAINING_MODE_SETTINGS } from '../shared/policy/trainingMode';
import { coefficientsFromSettings } from '../shared/sci/sci';
import { parseWith } from '../shared/validation';
import {
  DEFAULT_PRODUCTION_JOB,
  fitCostModel,
  measureTrainingCost,
  plannedDurationMinutes,
  retrainCost,
  type TrainingCostModel,
} from './replay/costModel';
import { runReplay, warmTreeShare, type ReplayConfig } from './replay/engine';
import { renderReplayHtml } from './replay/html';
import {
  formatCaseTable,
  formatDecomposition,
  formatSchedulerFootprint,
  formatSummary,
  formatThresholdSplit,
  summarise,
  tableOf,
  TARGETS,
} from './replay/tables';
import { allZoneYears, zoneYearLabel } from './replay/traceWorld';

/**
 * Policy replay benchmark: a year of weekly invoice batches per drift scenario against every bundled
 * carbon trace zone-year, every policy against the oracle, with the real models and a training cost
 * model fitted on this machine in the same run.
 *
 *   npm run bench:policies -- [--weeks 52] [--seed 42] [--quick] [--json] [--html out.html]
 *                             [--rows-per-week 2000] [--trees 20] [--zones DE,GB] [--scenarios stable]
 */
const list = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()))
  .optional();
const FLAGS_SCHEMA = z.object({
  weeks: z.coerce.number().int().min(2).max(52).optional(),
  seed: z.coerce.number().int().min(0).max(0xffffffff).default(42),
  quick: z.boolean().default(false),
  json: z.boolean().default(false),
  html: z.string().min(1).optional(),
  rowsPerWeek: z.coerce.number().int().min(500).max(50_000).optional(),
  trees: z.coerce.number().int().min(1).max(200).optional(),
  zones: list,
  scenarios: list,
  trainingMode: z.enum(TRAINING_MODE_SETTINGS).optional(),
});

function describeTrainingMode(mode: ReplayConfig['trainingMode']): string {
  const warm = `by warm start (${Math.round(warmTreeShare(DEFAULT_PRODUCTION_JOB.trees) * 100)} % new trees on the weeks since the champion's newest, at least the newest two and at most three)`;
  if (mode === 'warm-start') return warm;
  if (mode === 'adaptive')
    return `${warm} after a small drop with no new label, on the full window otherwise (TRAINING_MODE=adaptive)`;
  return 'on the full window';
}

async function main(): Promise<void> {
  const program = new Command('bench:policies')
    .option('--weeks <n>', 'weekly batches to replay (default 52, quick 12)')
    .option('--seed <n>', 'seed of invoices, models and forecast error')
    .option('--quick', 'CI size: 12 weeks, 2 scenarios, 3 zone-years, small models')
    .option('--json', 'print JSON instead of tables')
    .option('--html <file>', 'write a self-contained chart page')
    .option('--rows-per-week <n>', 'generated rows per weekly batch (default 2000, quick 1000)')
    .option('--trees <n>', 'trees of the replayed models (default 20, quick 10)')
    .option('--zones <list>', 'trace zones to replay (default: all)')
    .option('--scenarios <list>', `scenarios (default: ${SCENARIOS.join(',')})`)
    .option(
      '--training-mode <mode>',
      'how our policies retrain: full | warm-start | adaptive (default: TRAINING_MODE)',
    );
  program.parse(process.argv);
  const flags = parseWith(FLAGS_SCHEMA, program.opts(), 'bench:policies flags');
  const quick = flags.quick;

  const scenarios = parseWith(
    z.array(z.enum(SCENARIOS as [ScenarioName, ...ScenarioName[]])),
    flags.scenarios ?? (quick ? ['stable', 'vat-reform'] : [...SCENARIOS]),
    '--scenarios',
  );
  let zoneYears = allZoneYears();
  if (flags.zones) zoneYears = zoneYears.filter((z) => flags.zones?.includes(z.zone));
  else if (quick)
    zoneYears = zoneYears.filter((z) => z.year === 2022 && ['DE', 'SE', 'US-CAL-CISO'].includes(z.zone));
  if (zoneYears.length === 0) throw new Error(`no bundled trace for zones ${flags.zones?.join(',')}`);

  const settings = loadSettings({ DataStorage: 'UseDevelopmentStorage=true' });
  const trees = flags.trees ?? (quick ? 10 : 20);
  const sizes = quick ? [2_000, 5_000, 10_000] : [5_000, 20_000, 50_000];
  const log = (text: string): void => {
    if (!flags.json) process.stdout.write(text);
  };

  // Cost model: measured here, now, on this machine.
  log(`Measuring training CPU at ${sizes.join(', ')} rows (${trees} trees)…\n`);
  const samples = await measureTrainingCost({ sizes, trees, seed: flags.seed });
  const costModel: TrainingCostModel = fitCostModel(
    samples,
    trees,
    DEFAULT_PRODUCTION_JOB,
    coefficientsFromSettings(settings),
  );
  const windowWeeks = settings.TRAINING_WINDOW_BATCHES;
  const full = retrainCost(costModel, windowWeeks);
  log(
    samples
      .map((s) => `  ${s.rows} rows: ${s.cpuSeconds.toFixed(2)} cpu-s, ${s.wallSeconds.toFixed(2)} wall-s\n`)
      .join('') +
      `COST MODEL cpuSeconds = ${costModel.cpu.intercept.toFixed(3)} + ${(costModel.cpu.slope * 1000).toFixed(4)}e-3·rows ` +
      `(R² ${costModel.cpu.r2.toFixed(4)}); measured wallSeconds = ${costModel.wall.intercept.toFixed(3)} + ` +
      `${(costModel.wall.slope * 1000).toFixed(4)}e-3·rows (R² ${costModel.wall.r2.toFixed(4)}; machine load, not used: ` +
      `the job's wall is its CPU ÷ vCPUs); at ${trees} trees.\n` +
      `Production assumption: ${DEFAULT_PRODUCTION_JOB.rowsPerWeek} rows/week × ${windowWeeks} weeks = ${full.rows} rows, ` +
      `${DEFAULT_PRODUCTION_JOB.trees} trees (CPU ∝ trees), ${DEFAULT_PRODUCTION_JOB.vcpus} vCPU / ${DEFAULT_PRODUCTION_JOB.memoryGb} GB reserved, ` +
      `CCF coefficients, PUE ${settings.PUE} → ${full.cpuSeconds.toFixed(1)} cpu-s, ${full.wallSeconds.toFixed(1)} wall-s, ` +
      `${(full.energyKwh * 1000).toFixed(3)} Wh per full-window retrain; policies plan ${plannedDurationMinutes(costModel, windowWeeks)} min.\n`,
  );

  const config: ReplayConfig = {
    weeks: flags.weeks ?? (quick ? 12 : 52),
    scenarios,
    zoneYears,
    policies: POLICY_NAMES,
    model: { rowsPerWeek: flags.rowsPerWeek ?? (quick ? 1000 : 2000), trees, seed: flags.seed },
    windowWeeks,
    costModel,
    thresholds: thresholdsFromSettings(settings),
    seed: flags.seed,
    batchHourUtc: 9,
    trainingMode: flags.trainingMode ?? settings.TRAINING_MODE,
  };
  log(
    `Replaying ${config.weeks} weeks × ${scenarios.length} scenarios × ${zoneYears.length} zone-years ` +
      `(${zoneYears.map(zoneYearLabel).join(', ')}); models: ${config.model.rowsPerWeek} rows/week, ` +
      `${trees} trees, window ${windowWeeks} weeks, batches Mondays 09:00 UTC; our policies retrain ` +
      `${describeTrainingMode(config.trainingMode)}, the peers on the full window.\n`,
  );
  const startedAt = performance.now();
  const progress = new ProgressBar(
    'replay',
    scenarios.length * zoneYears.length * config.policies.length,
    process.stderr,
    'policy replays',
  );
  const { cases, trainings } = await runReplay(config, () => progress.tick());
  progress.done();
  const tables = cases.map(tableOf);
  const summaries = (['green', 'green-spatial'] as const).map((p) => summarise(tables, p));
  const seconds = (performance.now() - startedAt) / 1000;

  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ costModel, fullWindowRetrain: full, config: { ...config, costModel: undefined }, targets: TARGETS, tables, summaries, trainings, seconds }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(
      '\n÷oracle = emissions ÷ the oracle planning the SAME requests (perfect future, every allowed region); ' +
        '÷fair oracle = emissions ÷ the same policy planning on perfect forecasts (its own regions, 48 h horizon, deadline); ' +
        'misses = runs ending after their deadline + requests given up (threshold waits ≤ 7 days); ' +
        'worst gap = max over batches of nightly − policy accuracy.\n\n',
    );
    for (const t of tables) process.stdout.write(`${formatCaseTable(t)}\n`);
    process.stdout.write(
      `Targets (goals, not assertions): ours ≤ ${TARGETS.maxRatioToOracle} × oracle, ≤ ${TARGETS.maxRatioToThreshold} × threshold, ` +
        `mean accuracy within ${TARGETS.maxMeanAccuracyGapPp} pp of nightly, ${TARGETS.maxDeadlineMisses} deadline misses.\n`,
    );
    for (const s of summaries) process.stdout.write(formatSummary(s));
    for (const s of summaries) process.stdout.write(formatDecomposition(s));
    for (const s of summaries) process.stdout.write(formatThresholdSplit(s));
    for (const s of summaries) process.stdout.write(formatSchedulerFootprint(s));
    process.stdout.write(`${trainings} real model trainings; replay took ${seconds.toFixed(1)} s.\n`);
  }
  if (flags.html) {
    await writeFile(flags.html, renderReplayHtml(tables, summaries));
    log(`wrote ${flags.html}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:policies failed: ${describeError(error)}\n`);
  process.exitCode = 1;
});
