import { statusCodeOf } from '../shared/errors/classify';
import { loadSettings, type Settings } from '../shared/config';
import { createStorageClients, type StorageClients } from '../shared/storage/clients';
import { ModelRegistry } from '../shared/registry';
import { createPipelineLauncher, type LauncherDeps } from '../shared/containers/createLauncher';
import type { ContainerLauncher } from '../shared/containers/launcher';
import { createCarbonChain, type CarbonProviderDeps } from '../shared/carbon/factory';
import { ReadingCache } from '../shared/carbon/readingCache';
import { RunRecordStore } from '../shared/sci/runRecords';
import { createTelemetry, type Telemetry } from '../shared/telemetry/telemetry';
import { InvoiceStore } from '../shared/pipeline/invoiceStore';
import { ProcessedBatchLedger } from '../shared/pipeline/batchLedger';
import { PendingRetrainStore } from '../shared/pipeline/pendingRetrains';
import { ServingStateStore } from '../shared/pipeline/servingState';
import { ServingLoadStore } from '../shared/serving/servingLoadStore';
import { EvaluationRecordStore } from '../shared/pipeline/evaluationRecords';
import type { PipelineContext } from '../shared/pipeline/context';

/**
 * Builds the pipeline's services from settings, once per process. The Functions app calls it with
 * the real clock; the local driver passes its virtual clock, the local launcher and a recording
 * telemetry sink. Containers and tables are created here (idempotently), not on every invocation.
 */
export interface CompositionOptions {
  now?: () => Date;
  launcher?: ContainerLauncher;
  launcherDeps?: LauncherDeps;
  carbonDeps?: CarbonProviderDeps;
  telemetry?: Telemetry;
  log?: (message: string) => void;
  /** Storage clients to use instead of ones built from the settings (fault-injection tests). */
  storage?: StorageClients;
  /** Who takes batch claims, when the host can tell later that it died (local host: see processLedger). */
  claimHolder?: string;
}

export const TABLES = {
  pending: 'pendingretrains',
  serving: 'serving',
  evaluations: 'evaluations',
  ledger: 'processedbatches',
  runs: 'runrecords',
  daily: 'rundaily',
  // Serving planner inputs (issue 11): load per hour from /metrics/load, accuracy by tree count.
  servingLoad: 'servingload',
} as const;

export async function composePipeline(
  settings: Settings,
  options: CompositionOptions = {},
): Promise<PipelineContext> {
  const now = options.now ?? (() => new Date());
  const storage = options.storage ?? createStorageClients(settings);
  const registry = new ModelRegistry(storage.blobs);
  const invoices = new InvoiceStore(storage.blobs);
  const readings = ReadingCache.fromService(storage.blobs, now);
  const ledger = new ProcessedBatchLedger(
    storage.table(TABLES.ledger),
    settings.BATCH_CLAIM_TTL_MINUTES * 60_000,
    options.claimHolder,
  );
  const pending = new PendingRetrainStore(storage.table(TABLES.pending));
  const serving = new ServingStateStore(storage.table(TABLES.serving));
  const servingLoad = new ServingLoadStore(storage.table(TABLES.servingLoad));
  const evaluations = new EvaluationRecordStore(storage.table(TABLES.evaluations));
  const runRecords = RunRecordStore.fromStorage(storage, { runs: TABLES.runs, daily: TABLES.daily });
  // On Azure the deployment creates containers and tables; identities without create rights get 403.
  const ensure = (step: Promise<unknown>) =>
    step.catch((error: unknown) => {
      if (statusCodeOf(error) !== 403) throw error;
    });
  await Promise.all([
    ensure(registry.ensureContainer()),
    ensure(invoices.ensureContainer()),
    ensure(ledger.ensureTable()),
    ensure(pending.ensureTable()),
    ensure(serving.ensureTable()),
    ensure(servingLoad.ensureTable()),
    ensure(evaluations.ensureTable()),
    ensure(runRecords.ensureTables()),
  ]);
  const log = options.log ?? ((message: string) => console.log(message));
  return {
    settings,
    storage,
    registry,
    invoices,
    ledger,
    pending,
    serving,
    servingLoad,
    evaluations,
    runRecords,
    readings,
    launcher: options.launcher ?? createPipelineLauncher(settings, options.launcherDeps),
    carbon: createCarbonChain(settings, {
      ...options.carbonDeps,
      now,
      cache: readings,
      onFailure: (f) => log(`carbon: ${f.link} failed for ${f.zone}: ${f.code} ${f.message}`),
      onNotice: (message) => log(`carbon: ${message}`),
    }),
    telemetry: options.telemetry ?? createTelemetry(settings.APPLICATIONINSIGHTS_CONNECTION_STRING),
    now,
    log,
  };
}

let shared: Promise<PipelineContext> | null = null;

/**
 * The Functions worker's context, built on first use from the app settings (the pipelines file
 * was already checked by the app-start hook, functions/runtime.ts validateStartup).
 */
export function pipelineContext(): Promise<PipelineContext> {
  if (!shared) {
    shared = composePipeline(loadSettings(process.env));
    shared.catch(() => {
      shared = null;
    });
  }
  return shared;
}
