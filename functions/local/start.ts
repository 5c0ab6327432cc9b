import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Command } from 'commander';
import { z } from 'zod';
import { loadSettings, type Settings } from '../../shared/config';
import { startAzurite, type RunningAzurite } from '../../shared/storage/azurite';
import { composePipeline } from '../composition';
import { LocalHost } from './localHost';
import { VirtualClock } from './virtualClock';
import {
  generateWeek,
  weekStartDate,
  SCENARIOS,
  type GeneratorOptions,
  type ScenarioName,
} from '../../shared/invoices/generator';
import { serializeCsv } from '../../shared/invoices/serialize';
import { RecordingTelemetry } from '../../shared/telemetry/telemetry';
import { parseWith } from '../../shared/validation';
import { describeError, isGreenMlError } from '../../shared/errors';
import type { PipelineContext } from '../../shared/pipeline/context';
import { buildDemoReport } from './demoReport';
import { servingDemoSummary } from '../../shared/serving/servingDemo';

/**
 * `npm start`: the whole pipeline on this machine, on embedded defaults. Azurite is started for
 * you (on disk under .demo/, so `--resume` continues an interrupted run), a generated demo
 * scenario is uploaded week by week on a virtual clock, the carbon poller runs on its schedule over
 * the bundled real carbon trace, orchestrations run through the real durable-functions replay and
 * the containers run as local processes. It ends with a summary and an HTML report.
 */
const OPTIONS_SCHEMA = z.object({
  scenario: z.enum(SCENARIOS as [ScenarioName, ...ScenarioName[]]),
  weeks: z.coerce.number().int().min(2).max(52),
  rowsPerWeek: z.coerce.number().int().min(500).max(200_000),
  seed: z.coerce.number().int(),
  startDate: z.iso.date(),
  out: z.string().min(1),
  resume: z.boolean(),
});
type DemoOptions = z.output<typeof OPTIONS_SCHEMA>;

/** Demo defaults that differ from production ones, each overridable from the environment. */
const DEMO_SETTINGS: Record<string, string> = {
  CARBON_POLL_SCHEDULE: '0 0 * * * *',
  CONTAINER_POLL_SECONDS: '5',
  HEALTH_CHECK_INTERVAL_SECONDS: '1',
  HEALTH_CHECK_ATTEMPTS: '15',
  TRAINING_WINDOW_BATCHES: '6',
};

function stamp(clock: VirtualClock): string {
  return clock.now().toISOString().slice(0, 16).replace('T', ' ');
}

async function uploadWeek(ctx: PipelineContext, generator: GeneratorOptions, week: number): Promise<string> {
  const name = `invoices-${weekStartDate(generator, week)}.csv`;
  const text = Readable.from(serializeCsv(generateWeek(generator, week)));
  await ctx.invoices.upload(name, text);
  return name;
}

export async function runDemo(options: DemoOptions): Promise<{ reportPath: string; summaryPath: string }> {
  const outDir = path.resolve(options.out);
  const azuriteDir = path.join(outDir, 'azurite');
  if (!options.resume) fs.rmSync(azuriteDir, { recursive: true, force: true });
  fs.mkdirSync(azuriteDir, { recursive: true });
  const generator: GeneratorOptions = {
    scenario: options.scenario,
    weeks: options.weeks,
    rowsPerWeek: options.rowsPerWeek,
    seed: options.seed,
    startDate: options.startDate,
  };
  const startedAt = Date.now();
  let azurite: RunningAzurite | null = null;
  const clock = new VirtualClock(new Date(`${weekStartDate(generator, 0)}T00:00:00Z`));
  const progress = (message: string) => process.stdout.write(`[${stamp(clock)}] ${message}\n`);
  try {
    azurite = await startAzurite({ location: azuriteDir });
    progress(
      `Azurite on 127.0.0.1:${azurite.blobPort} (blob) and :${azurite.tablePort} (table), data in ${azuriteDir}`,
    );
    const env: Record<string, string | undefined> = {
      ...DEMO_SETTINGS,
      ...process.env,
      DataStorage: azurite.connectionString,
    };
    const settings: Settings = loadSettings(env);
    const telemetry = new RecordingTelemetry(clock.now);
    const verbose = process.env.LOG_LEVEL === 'debug';
    const ctx = await composePipeline(settings, {
      now: clock.now,
      telemetry,
      log: (message) => {
        if (verbose || /launched|signalled|run .*:|retired|orphan|quarantined|plan for/.test(message))
          progress(message);
      },
    });
    const resumeState = await readResumeState(outDir, options.resume);
    if (resumeState) clock.advanceTo(new Date(resumeState.clock));
    const host = await LocalHost.create(ctx, clock, {
      onBatch: (outcome) => {
        if (outcome.kind === 'evaluated') {
          const r = outcome.record;
          const accuracy =
            r.accuracy === null ? 'no champion yet' : `accuracy ${(r.accuracy * 100).toFixed(1)} %`;
          progress(
            `${r.batchName}: ${r.rowsAccepted} rows, ${accuracy} -> ${r.decision.kind} (${outcome.action})`,
          );
        } else if (outcome.kind === 'quarantined') {
          progress(`${outcome.batchName}: quarantined (${outcome.code}) ${outcome.reason}`);
        }
      },
    });
    progress(
      `demo: ${options.scenario}, ${options.weeks} weeks x ${options.rowsPerWeek} invoices, carbon ${settings.CARBON_PROVIDER} ` +
        `(${settings.CARBON_TRACE_YEAR} trace, ${settings.CARBON_TRACE_FORECAST} forecast), regions ${settings.ALLOWED_REGIONS.join(', ')}`,
    );
    for (let week = resumeState?.nextWeek ?? 0; week < options.weeks; week++) {
      // A week's batch is uploaded when the week is over.
      const uploadAt = new Date(
        Date.parse(`${weekStartDate(generator, week)}T00:00:00Z`) + 7 * 86_400_000 + 6 * 3_600_000,
      );
      await host.runUntil(uploadAt);
      const name = await uploadWeek(ctx, generator, week);
      progress(`uploaded ${name}`);
      await writeResumeState(outDir, { clock: clock.now().toISOString(), nextWeek: week + 1 });
      await host.deliverBlobEvents();
    }
    // Let open requests (green windows wait up to their deadline) run to completion.
    const limit = new Date(clock.now().getTime() + 3 * 86_400_000);
    while ((await host.busy()) && clock.now() < limit) {
      await host.runUntil(new Date(Math.min(limit.getTime(), clock.now().getTime() + 6 * 3_600_000)));
    }
    const { reportPath, summaryText, summary } = await buildDemoReport(ctx, telemetry, {
      outDir,
      scenario: options.scenario,
      wallSeconds: (Date.now() - startedAt) / 1000,
      fromIso: `${weekStartDate(generator, 0)}T00:00:00.000Z`,
    });
    // Serving plan (issue 11): the planner over the demo period, against today's always-on API.
    const serving = await servingDemoSummary(ctx, settings, {
      fromMs: Date.parse(`${weekStartDate(generator, 0)}T00:00:00.000Z`),
      toMs: clock.now().getTime(),
    });
    // Cleanup: stop the serving API too; the demo leaves nothing running.
    for (const group of await ctx.launcher.list()) await ctx.launcher.delete(group.groupName);
    const left = await ctx.launcher.list();
    const summaryPath = path.join(outDir, 'summary.json');
    fs.writeFileSync(
      summaryPath,
      JSON.stringify(
        {
          ...summary,
          serving: serving.comparison.rows.map((r) => ({ configuration: r.key, ...r.result })),
          containersLeftRunning: left.length,
        },
        null,
        2,
      ),
    );
    process.stdout.write(`\n${summaryText}\n`);
    process.stdout.write(`${serving.lines.join('\n')}\n`);
    process.stdout.write(`containers left running: ${left.length}\n`);
    process.stdout.write(`report: ${reportPath}\nsummary: ${summaryPath}\n`);
    fs.rmSync(path.join(outDir, 'resume.json'), { force: true });
    return { reportPath, summaryPath };
  } finally {
    await azurite?.stop();
  }
}

const RESUME_SCHEMA = z.object({ clock: z.string(), nextWeek: z.number().int().nonnegative() });

async function readResumeState(
  outDir: string,
  resume: boolean,
): Promise<z.output<typeof RESUME_SCHEMA> | null> {
  const file = path.join(outDir, 'resume.json');
  if (!resume || !fs.existsSync(file)) return null;
  return parseWith(RESUME_SCHEMA, JSON.parse(fs.readFileSync(file, 'utf8')), 'resume state');
}

async function writeResumeState(outDir: string, state: z.output<typeof RESUME_SCHEMA>): Promise<void> {
  fs.writeFileSync(path.join(outDir, 'resume.json'), JSON.stringify(state));
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('npm start')
    .description('Run the whole pipeline locally on a generated demo scenario and real carbon traces.')
    .option('--scenario <name>', `drift scenario (${SCENARIOS.join(', ')})`, 'vat-reform')
    .option('--weeks <n>', 'weekly batches to upload', '12')
    .option('--rows-per-week <n>', 'invoices per weekly batch', '4000')
    .option('--seed <n>', 'generator seed', '7')
    .option(
      '--start-date <date>',
      'Monday of week 0 (the vat-reform scenario changes the rate on 2024-09-01)',
      '2024-07-01',
    )
    .option('--out <dir>', 'where Azurite data, the report and the summary go', '.demo')
    .option(
      '--resume',
      'continue an interrupted run (orchestrations resume from their stored history)',
      false,
    )
    .exitOverride();
  try {
    program.parse(argv);
    const raw = program.opts<Record<string, unknown>>();
    const options = parseWith(OPTIONS_SCHEMA, { ...raw, rowsPerWeek: raw.rowsPerWeek }, 'npm start options');
    await runDemo(options);
    return 0;
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('commander.')) return 0;
    process.stderr.write(
      isGreenMlError(error)
        ? `error [${error.code}]: ${error.message}\n`
        : `error: ${describeError(error)}\n`,
    );
    if (!isGreenMlError(error) && error instanceof Error && error.stack)
      process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exit(code);
  });
}
