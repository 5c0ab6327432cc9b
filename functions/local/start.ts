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
  ALL_SCENARIOS,
  type GeneratorOptions,
  type ScenarioName,
} from '../../shared/invoices/generator';
import { serializeCsv } from '../../shared/invoices/serialize';
import type { InvoiceRow } from '../../shared/invoices/schema';
import { RecordingTelemetry } from '../../shared/telemetry/telemetry';
import { parseWith } from '../../shared/validation';
import { describeError, isGreenMlError } from '../../shared/errors';
import type { PipelineContext } from '../../shared/pipeline/context';
import { buildDemoReport } from './demoReport';
import { LocalScaleToZeroLauncher } from '../../shared/serving/localScaleToZeroLauncher';
import { recordLoadFrom } from '../../shared/pipeline/servingUpkeep';
import { describePlanRecord } from '../../shared/serving/servingPlanRecord';
import { DemoServing } from './demoServing';
import { LocalLauncher, defaultEntrypoints } from '../../shared/containers/localLauncher';
import { ProcessLedger, hostIdentity, isDeadHost } from './processLedger';
import { restoreServingApis } from './recovery';
import { crashPointFromEnv, type CrashPoint } from './crashPoint';
import { demoPipelinesFile } from './demoModels';
import { deployedPipelines } from '../../shared/pipelines/deployedPipelines';

/**
 * `npm start`: the whole pipeline on this machine, on embedded defaults. Azurite is started for
 * you (on disk under .demo/, so `--resume` continues an interrupted run), a generated demo
 * scenario is uploaded week by week on a virtual clock, the carbon poller runs on its schedule over
 * the bundled real carbon trace, orchestrations run through the real durable-functions replay and
 * the containers run as local processes. It ends with a summary and an HTML report.
 */
const OPTIONS_SCHEMA = z.object({
  scenario: z.enum(ALL_SCENARIOS as [ScenarioName, ...ScenarioName[]]),
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
  // Two models on the generated data (vat-rate and account-code), from the bundled pipelines file.
  PIPELINES_FILE: demoPipelinesFile(),
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
  // Whatever a killed earlier run left (Azurite, trainings, model APIs) is stopped first: it would
  // hold the data folder, and an old model API would outlive this run.
  const ledger = new ProcessLedger(path.join(outDir, 'processes'));
  const leftovers = await ledger.stopLeftovers();
  if (leftovers.length > 0) {
    process.stdout.write(
      `stopped ${leftovers.length} process(es) an interrupted run left: ${leftovers.map((e) => e.name).join(', ')}\n`,
    );
  }
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
  let launcher: LocalScaleToZeroLauncher | null = null;
  const stopSignals = handleStopSignals(async () => {
    await launcher?.close();
    await azurite?.stop();
    for (const pid of azurite?.pids ?? []) ledger.forget('azurite', pid);
  }, options);
  const crashPoint = crashPointFromEnv(process.env);
  const clock = new VirtualClock(new Date(`${weekStartDate(generator, 0)}T00:00:00Z`));
  const progress = (message: string) => process.stdout.write(`[${stamp(clock)}] ${message}\n`);
  try {
    azurite = await startAzurite({ location: azuriteDir });
    for (const pid of azurite.pids) ledger.record('azurite', pid, { group: false });
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
    const processes = new LocalLauncher({
      entrypoints: defaultEntrypoints(settings),
      processes: {
        started: (groupName, pid) => ledger.record(groupName, pid, { group: true }),
        ended: (groupName, pid) => ledger.forget(groupName, pid),
      },
    });
    // Scale to zero locally (issue 11): a planned model API is a front that starts its process on
    // the first request and stops it when idle, handing its load metrics over before it stops.
    let composed: PipelineContext | null = null;
    launcher = new LocalScaleToZeroLauncher(processes, {
      idleTimeoutMs: 300,
      now: clock.now,
      beforeReplicaStop: async (api, url) => {
        // Each model's API is launched tagged with its model: its load goes to that model's records.
        const model = api.spec.tags.model ?? settings.MODEL_NAME;
        if (composed) await recordLoadFrom(composed, model, api.groupName, url).catch(() => undefined);
      },
    });
    const ctx = await composePipeline(settings, {
      launcher,
      claimHolder: hostIdentity(),
      now: clock.now,
      telemetry,
      log: (message) => {
        if (verbose || /launched|signalled|run .*:|retired|orphan|quarantined|plan for/.test(message))
          progress(message);
      },
    });
    composed = ctx;
    const resumeState = await readResumeState(outDir, options.resume);
    if (resumeState) clock.advanceTo(new Date(resumeState.clock));
    let released: { name: string; etag: string }[] = [];
    if (options.resume) {
      await restoreServingApis(ctx);
      // The killed run cannot finish the batches it had claimed: end their leases now, so they are
      // re-driven at the time the killed run was at (same as the uninterrupted run), not 10 minutes later.
      released = await ctx.ledger.releaseDeadHolders(isDeadHost, clock.now().toISOString());
      if (released.length > 0)
        progress(`released the interrupted run's claims on ${released.map((d) => d.name).join(', ')}`);
    }
    if (crashPoint?.kind === 'evaluating') pauseInEvaluation(ctx, crashPoint);
    let batchesEvaluated = 0;
    const host = await LocalHost.create(ctx, clock, {
      onBatch: (outcome) => {
        if (outcome.kind === 'evaluated') {
          for (const result of outcome.pipelines) {
            if (result.kind === 'skipped') {
              progress(`${outcome.batchName}: skipped for ${result.modelName}: ${result.reason}`);
              continue;
            }
            const r = result.record;
            const accuracy =
              r.accuracy === null ? 'no champion yet' : `accuracy ${(r.accuracy * 100).toFixed(1)} %`;
            const model = outcome.pipelines.length > 1 ? ` [${r.modelName}]` : '';
            progress(
              `${r.batchName}${model}: ${r.rowsAccepted} rows, ${accuracy} -> ${r.decision.kind} (${result.action})`,
            );
          }
        } else if (outcome.kind === 'quarantined') {
          progress(`${outcome.batchName}: quarantined (${outcome.code}) ${outcome.reason}`);
        }
        batchesEvaluated++;
      },
      onActivity: async (name, phase) => {
        if (crashPoint?.kind === 'activity') await pauseIfReached(crashPoint, name, phase);
      },
    });
    const pipelines = deployedPipelines(settings).pipelines;
    progress(
      `demo: ${options.scenario}, ${options.weeks} weeks x ${options.rowsPerWeek} invoices, ` +
        `models ${pipelines.map((p) => `${p.name} (label ${p.label})`).join(', ')}, carbon ${settings.CARBON_PROVIDER} ` +
        `(${settings.CARBON_TRACE_YEAR} trace, ${settings.CARBON_TRACE_FORECAST} forecast), regions ${settings.ALLOWED_REGIONS.join(', ')}`,
    );
    // The killed run was delivering the last upload's event at this clock when it stopped: finish
    // the batches it had claimed and deliver the rest now, as the uninterrupted run did.
    for (const delivery of released) await host.redeliver(delivery.name, delivery.etag);
    if (resumeState) await host.deliverBlobEvents();
    const sampleRows = generateWeek(generator, 0);
    const demoServing = new DemoServing(ctx, host, clock, launcher, sampleRows);
    for (let week = resumeState?.nextWeek ?? 0; week < options.weeks; week++) {
      // A week's batch is uploaded when the week is over.
      const weekStartMs = Date.parse(`${weekStartDate(generator, week)}T00:00:00Z`);
      const uploadAt = new Date(weekStartMs + 7 * 86_400_000 + 6 * 3_600_000);
      for (let day = 0; day < 7; day++) {
        for (const served of await demoServing.day(weekStartMs + day * 86_400_000)) {
          if (served.replan?.kind === 'switched' || served.replan?.kind === 'unhealthy') {
            progress(
              `serving re-plan of ${served.model}: ${served.replan.kind} (${describePlanRecord(served.replan.plan)})`,
            );
          }
        }
      }
      await host.runUntil(uploadAt);
      const name = await uploadWeek(ctx, generator, week);
      progress(`uploaded ${name}`);
      await writeResumeState(outDir, { clock: clock.now().toISOString(), nextWeek: week + 1 });
      if (crashPoint?.kind === 'upload') await pauseIfReached(crashPoint, 'upload', 'after', week + 1);
      await host.deliverBlobEvents();
      if (crashPoint?.kind === 'batch') await pauseIfReached(crashPoint, 'batch', 'after', batchesEvaluated);
    }
    // Let open requests (green windows wait up to their deadline) run to completion.
    const limit = new Date(clock.now().getTime() + 3 * 86_400_000);
    while ((await host.busy()) && clock.now() < limit) {
      await host.runUntil(new Date(Math.min(limit.getTime(), clock.now().getTime() + 6 * 3_600_000)));
    }
    // A serving API lost to an interruption after its switch is running again before the summary.
    await restoreServingApis(ctx);
    const { reportPath, summaryText, summary } = await buildDemoReport(ctx, telemetry, {
      outDir,
      scenario: options.scenario,
      wallSeconds: (Date.now() - startedAt) / 1000,
      fromIso: `${weekStartDate(generator, 0)}T00:00:00.000Z`,
      sampleRow: sampleRows[Symbol.iterator]().next().value as InvoiceRow,
    });
    // What the crash matrix compares with the uninterrupted run: each model's champion, and the
    // model APIs actually running (processes, from the ledger) before the demo stops them.
    const models = [];
    for (const m of summary.models) {
      const champion = await ctx.registry.getChampion(m.model);
      models.push({
        ...m,
        champion: champion
          ? {
              versionId: champion.pointer.versionId,
              accuracy: (await ctx.registry.getVersionMetadata(m.model, champion.pointer.versionId))
                .holdoutMetrics.accuracy,
              // Same scenario and seed, same bytes: the crash matrix compares it with the reference.
              artifactSha256: await ctx.registry.getArtifactSha256(m.model, champion.pointer.versionId),
            }
          : null,
        servingVersionId: (await ctx.serving.get(m.model))?.versionId ?? null,
      });
    }
    // A scaled-to-zero API serves through its front even with no process up; a replica is its API's.
    const modelApisRunning = new Set([
      ...ledger
        .live()
        .filter((entry) => entry.name.startsWith('api-'))
        .map((entry) => entry.name.replace(/-r\d+$/, '')),
      ...(await launcher.list({ tags: { stage: 'serve' } }))
        .filter((g) => g.state === 'running')
        .map((g) => g.groupName),
    ]).size;
    // Cleanup: stop the serving API too; the demo leaves nothing running. Counted from the
    // process ledger (real processes), not from the launcher's records.
    await launcher.close();
    const left = ledger.live().filter((entry) => entry.name !== 'azurite');
    const summaryPath = path.join(outDir, 'summary.json');
    fs.writeFileSync(
      summaryPath,
      JSON.stringify(
        {
          ...summary,
          models,
          modelApisRunning,
          containersLeftRunning: left.length,
        },
        null,
        2,
      ),
    );
    process.stdout.write(`\n${summaryText}\n`);
    process.stdout.write(`containers left running: ${left.length}\n`);
    process.stdout.write(`report: ${reportPath}\nsummary: ${summaryPath}\n`);
    fs.rmSync(path.join(outDir, 'resume.json'), { force: true });
    return { reportPath, summaryPath };
  } finally {
    await launcher?.close();
    await azurite?.stop();
    for (const pid of azurite?.pids ?? []) ledger.forget('azurite', pid);
    stopSignals.dispose();
  }
}

/**
 * SIGINT / SIGTERM: stop the children this run started and Azurite (with SIGINT, the signal its
 * table service saves on), say how to continue, and exit non-zero (128 + signal number).
 */
function handleStopSignals(stop: () => Promise<void>, options: DemoOptions): { dispose(): void } {
  const codes: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping the containers and Azurite started by this run...\n`);
    stop()
      .catch((error: unknown) => process.stderr.write(`while stopping: ${describeError(error)}\n`))
      .finally(() => {
        process.stderr.write(
          `stopped. Continue with: npm start -- --resume --out ${options.out} --scenario ${options.scenario} ` +
            `--weeks ${options.weeks} --rows-per-week ${options.rowsPerWeek} --seed ${options.seed} --start-date ${options.startDate}\n`,
        );
        process.exit(codes[signal] ?? 1);
      });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** Prints the crash point's marker and waits for the crash matrix's signal. */
/** Pauses after the first journal step of the n-th batch claimed (claim held, batch unfinished). */
function pauseInEvaluation(ctx: PipelineContext, point: CrashPoint): void {
  const ledger = ctx.ledger;
  const save = ledger.save.bind(ledger);
  const claimed: string[] = [];
  ledger.save = async (claim, nowIso) => {
    await save(claim, nowIso);
    if (claimed.includes(claim.name)) return;
    claimed.push(claim.name);
    await pauseIfReached(point, 'evaluating', 'after', claimed.length);
  };
}

async function pauseIfReached(point: CrashPoint, name: string, phase: 'before' | 'after', count?: number) {
  if (!point.matches(name, phase, count)) return;
  process.stdout.write(`[crash-point] ${point.label}\n`);
  await new Promise<never>(() => {});
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
    .option('--scenario <name>', `drift scenario (${ALL_SCENARIOS.join(', ')})`, 'vat-reform')
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
