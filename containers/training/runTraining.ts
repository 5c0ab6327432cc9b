import type { BlobServiceClient } from '@azure/storage-blob';
import { ProgressBar } from '../../shared/cli/progress';
import { loadSettings } from '../../shared/config';
import {
  BatchUnreadableError,
  ConfigError,
  ConflictError,
  NotFoundError,
  describeError,
} from '../../shared/errors';
import { deserializeModel } from '../../shared/model/artifact';
import { FEATURE_SCHEMA_VERSION } from '../../shared/model/features';
import type { ModelMetadata } from '../../shared/model/metadata';
import type { TrainedModel } from '../../shared/model/trainedModel';
import { trainFromBatches, type BatchSource } from '../../shared/model/training';
import { parsePartialBatchChunks, type ParsedRecord } from '../../shared/invoices/parser';
import { columnsRead } from '../../shared/pipelines/trainableBatches';
import { InvoiceStore } from '../../shared/pipeline/invoiceStore';
import { trainDeclaredModel, type TrainingDeclaration } from '../../shared/pipelines/declaredModel';
import { encodingVersion } from '../../shared/pipelines/featureEncoding';
import { ModelRegistry } from '../../shared/registry';
import { createStorageClients } from '../../shared/storage/clients';
import { parseTrainingJob, type TrainingJob } from './jobSettings';

export interface TrainingDeps {
  /** Blob endpoint; default: from the storage settings in `env`. */
  blobs?: BlobServiceClient;
  /** Container names; defaults are the production ones (`models`, `invoices`). */
  modelsContainer?: string;
  invoicesContainer?: string;
  /** Worker threads for growing trees (default: the trainer's, up to 2). */
  threads?: number;
  /** Where tree progress goes (default: stderr; silent for runs under a second). */
  progressStream?: NodeJS.WriteStream;
}

/** The one JSON line a training container prints on success; the orchestrator's logs keep it. */
export interface TrainingSummary {
  event: 'training-complete';
  /** `already-trained`: a retried container found its version stored by an earlier attempt. */
  outcome: 'trained' | 'already-trained';
  modelName: string;
  versionId: string;
  mode: TrainingJob['mode']['kind'];
  warmStartedFrom: string | null;
  dataWindow: string[];
  rows: ModelMetadata['rows'];
  rejectedRows: number | null;
  holdoutMetrics: ModelMetadata['holdoutMetrics'];
  classes: string[];
  sizeBytes: number;
  /** CPU time of parsing, encoding, growing and evaluating, from the trainer. */
  trainingCpuSeconds: number | null;
  /** CPU time of this whole run, downloads and upload included. */
  processCpuSeconds: number;
  wallSeconds: number;
}

/**
 * One training run: checks the job, streams the window's accepted batches from Blob Storage into
 * the trainer, and stores the result as a new registry version (artifact, then metadata). The
 * version id comes from the orchestrator, so a container that is started twice for the same run
 * finds its own version and reports it instead of training (and spending the energy) again.
 */
export async function runTraining(
  env: Record<string, string | undefined>,
  deps: TrainingDeps = {},
): Promise<TrainingSummary> {
  const startedAtMs = Date.now();
  const cpuAtStart = process.cpuUsage();
  const job = parseTrainingJob(env);
  const blobs = deps.blobs ?? blobClientFrom(env);
  const registry = new ModelRegistry(blobs, { containerName: deps.modelsContainer });
  const invoices = new InvoiceStore(blobs, deps.invoicesContainer);

  const finishedBefore = await existingVersion(registry, job);
  if (finishedBefore) {
    return summarize(job, finishedBefore, null, null, 'already-trained', startedAtMs, cpuAtStart);
  }

  await requireBatches(invoices, job.dataBlobs);
  if (job.encoding.kind === 'declared') {
    return trainDeclared(job, job.encoding.pipeline, { registry, invoices, deps, startedAtMs, cpuAtStart });
  }
  const warmStartFrom =
    job.mode.kind === 'warm-start'
      ? await loadPrevious(registry, job.modelName, job.mode.fromVersionId)
      : undefined;

  const sources: BatchSource[] = job.dataBlobs.map((name) => ({
    name,
    open: () => invoices.openAccepted(name),
  }));
  const progress = new ProgressBar(
    `training ${job.versionId}`,
    job.forest.trees,
    deps.progressStream,
    ' trees',
  );
  const result = await trainFromBatches(sources, {
    ...job.forest,
    seed: job.seed,
    ...(job.trainedAt === null ? {} : { trainedAt: job.trainedAt }),
    modelName: job.modelName,
    versionId: job.versionId,
    warmStartFrom,
    threads: deps.threads,
    onProgress: (done, total) => {
      progress.setTotal(total);
      progress.update(done);
    },
  });
  progress.done();

  await registry.putVersion(result.metadata, result.artifact);
  return summarize(
    job,
    result.metadata,
    result.rejectedRows,
    result.cpuSeconds,
    'trained',
    startedAtMs,
    cpuAtStart,
  );
}

/**
 * A declared pipeline's run: the window's accepted rows streamed once into the pipeline's own
 * encoding, a full fit with its forest, held-out metrics on the rows whose invoice-id hash holds
 * them out (the same rows comparison and the evaluator's holdout use), stored as the declared
 * artifact through the same immutable, hashed registry write.
 */
async function trainDeclared(
  job: TrainingJob,
  pipeline: TrainingDeclaration,
  run: {
    registry: ModelRegistry;
    invoices: InvoiceStore;
    deps: TrainingDeps;
    startedAtMs: number;
    cpuAtStart: NodeJS.CpuUsage;
  },
): Promise<TrainingSummary> {
  const { invoices } = run;
  const needed = columnsRead(pipeline);
  const records = (async function* (): AsyncGenerator<ParsedRecord> {
    for (const name of job.dataBlobs) {
      // A batch may carry only some invoice columns (accepted for another model); it must carry
      // every column this model reads, which the parser has checked before the first row arrives.
      const chunks = parsePartialBatchChunks(
        await invoices.openAccepted(name),
        { fileName: name },
        {
          onColumns: (columns) => {
            const missing = needed.filter((c) => !columns.includes(c));
            if (missing.length > 0) {
              throw new BatchUnreadableError(
                `${name} lacks ${missing.join(', ')}, which ${pipeline.name} reads`,
                'bad-header',
              );
            }
          },
        },
      );
      for await (const chunk of chunks) {
        // Every column the model reads is present (checked above); the others are never read.
        yield* chunk as ParsedRecord[];
      }
    }
  })();
  const result = await trainDeclaredModel(pipeline, records, {
    seed: job.seed,
    versionId: job.versionId,
    dataWindow: job.dataBlobs,
    threads: run.deps.threads,
    ...(job.trainedAt === null ? {} : { now: () => new Date(job.trainedAt as string) }),
  });
  const { metadata } = result.model;
  await run.registry.putVersion(metadata, result.artifact);
  return summarize(
    job,
    metadata,
    result.rowsRejected,
    metadata.trainingCpuSeconds,
    'trained',
    run.startedAtMs,
    run.cpuAtStart,
  );
}

/** A connection string the SDK cannot parse is a settings error; its text never reaches the message. */
function blobClientFrom(env: Record<string, string | undefined>): BlobServiceClient {
  const settings = loadSettings(env);
  try {
    return createStorageClients(settings).blobs;
  } catch (error) {
    const reason = `not a usable storage connection string or endpoint (${describeError(error)})`;
    throw new ConfigError(`Invalid settings (1): DataStorage: ${reason}`, [{ key: 'DataStorage', reason }]);
  }
}

/**
 * The stored version when an earlier attempt of this very job finished; a ConflictError when the
 * id holds a different model (a reused id must never be reported as this job's result).
 */
async function existingVersion(registry: ModelRegistry, job: TrainingJob): Promise<ModelMetadata | null> {
  let stored: ModelMetadata;
  try {
    stored = await registry.getVersionMetadata(job.modelName, job.versionId);
  } catch (error) {
    if (error instanceof NotFoundError) return null;
    throw error;
  }
  const expectedParent = job.mode.kind === 'warm-start' ? job.mode.fromVersionId : null;
  const window = new Set(stored.dataWindow);
  const sameJob =
    stored.warmStartedFrom === expectedParent &&
    job.dataBlobs.every((name) => window.has(name)) &&
    stored.hyperparameters.trees === job.forest.trees &&
    stored.hyperparameters.seed === job.seed &&
    stored.featureSchemaVersion === expectedEncoding(job);
  if (!sameJob) {
    throw new ConflictError(
      `Model version ${job.modelName}/${job.versionId} already exists and was trained by a different job; use a new VERSION_ID`,
      { details: { modelName: job.modelName, versionId: job.versionId } },
    );
  }
  return stored;
}

/** The encoding the job's version must have, so a version of the other format is never taken for this job's. */
function expectedEncoding(job: TrainingJob): string {
  return job.encoding.kind === 'declared' ? encodingVersion(job.encoding.pipeline) : FEATURE_SCHEMA_VERSION;
}

/** Fails before any download when a batch of the window is missing, naming every missing one. */
async function requireBatches(invoices: InvoiceStore, names: string[]): Promise<void> {
  const present = await Promise.all(
    names.map((name) => invoices.container.getBlobClient(`accepted/${name}`).exists()),
  );
  const missing = names.filter((_, i) => !present[i]);
  if (missing.length > 0) {
    throw new NotFoundError(
      `${missing.length} of ${names.length} batches in DATA_BLOBS are not accepted batches in ${invoices.container.containerName}: ${missing.join(', ')}`,
      { details: { missing } },
    );
  }
}

async function loadPrevious(
  registry: ModelRegistry,
  modelName: string,
  versionId: string,
): Promise<TrainedModel> {
  const model = deserializeModel(await registry.downloadArtifact(modelName, versionId));
  if (model.metadata.modelName !== modelName || model.metadata.versionId !== versionId) {
    throw new ConflictError(
      `Warm-start artifact ${modelName}/${versionId} says it is ${model.metadata.modelName}/${model.metadata.versionId}`,
    );
  }
  return model;
}

function summarize(
  job: TrainingJob,
  metadata: ModelMetadata,
  rejectedRows: number | null,
  trainerCpuSeconds: number | null,
  outcome: TrainingSummary['outcome'],
  startedAtMs: number,
  cpuAtStart: NodeJS.CpuUsage,
): TrainingSummary {
  const cpu = process.cpuUsage(cpuAtStart);
  return {
    event: 'training-complete',
    outcome,
    modelName: metadata.modelName,
    versionId: metadata.versionId,
    mode: job.mode.kind,
    warmStartedFrom: metadata.warmStartedFrom,
    dataWindow: metadata.dataWindow,
    rows: metadata.rows,
    rejectedRows,
    holdoutMetrics: metadata.holdoutMetrics,
    classes: metadata.classes,
    sizeBytes: metadata.sizeBytes,
    trainingCpuSeconds: trainerCpuSeconds === null ? metadata.trainingCpuSeconds : round3(trainerCpuSeconds),
    processCpuSeconds: round3((cpu.user + cpu.system) / 1e6),
    wallSeconds: round3((Date.now() - startedAtMs) / 1000),
  };
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
