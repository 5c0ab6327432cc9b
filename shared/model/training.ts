import { ValidationError } from '../errors';
import { parseInvoiceBatchChunks } from '../invoices/parser';
import type { InvoiceRow } from '../invoices/schema';
import { sealModel } from './artifact';
import { sortedClasses } from './classes';
import { InvoiceColumns } from './columns';
import { ChunkedEvaluator, type EvaluationReport } from './evaluation';
import { FEATURE_SCHEMA_VERSION, FeatureEncoder } from './features';
import type { ModelMetadata } from './metadata';
import { stableFraction } from './random';
import {
  mergeForests,
  resolveFeaturesPerSplit,
  trainForest,
  type Forest,
  type MaxFeatures,
} from './randomForest';
import type { TrainedModel } from './trainedModel';

export const DEFAULT_HOLDOUT_FRACTION = 0.2;
export const ALGORITHM = 'random-forest/histogram-gini';
/** Share of a warm-started forest grown on the new batches (measured: matches a full retrain on the
 * vat-reform, supplier-churn and new-market scenarios at about half the CPU; 50 % lost the reform). */
export const WARM_START_NEW_SHARE = 0.6;

export interface TrainingOptions {
  trees: number;
  maxFeatures: MaxFeatures;
  minSamplesLeaf: number;
  maxDepth: number;
  seed: number;
  /** Share of rows held out, chosen by a stable hash of invoiceId (default 0.2). */
  holdoutFraction?: number;
  modelName: string;
  versionId?: string;
  /** Warm start: grow `warmStartTrees` new trees on these batches and keep the newest `trees`. */
  warmStartFrom?: TrainedModel;
  /**
   * Trees grown on the new data in a warm start. Default: 60 % of `trees`, so the new trees hold the
   * majority of the vote and a changed rule (a VAT reform) wins over the old trees' confident votes.
   */
  warmStartTrees?: number;
  /** Worker threads for growing trees (default: up to 2). */
  threads?: number;
  /**
   * When the version counts as trained (default: now). The pipeline passes its run's start, so the
   * same data, seed and hyperparameters give a byte-identical artifact on every run and resume.
   */
  trainedAt?: string;
  onProgress?: (done: number, total: number) => void;
}

export interface TrainingResult {
  model: TrainedModel;
  metadata: ModelMetadata;
  rejectedRows: number;
  cpuSeconds: number;
  /** Full report on the held-out rows (metadata.holdoutMetrics is its headline). */
  holdout: EvaluationReport;
  /** The serialized artifact (metadata.sizeBytes is its byte length). */
  artifact: string;
  /** Wall seconds per phase, to show where a training run's time goes. */
  phaseSeconds: TrainingPhases;
  /** Threads that grew the trees (the model is the same whatever this is). */
  fitThreads: number;
}

export interface TrainingPhases {
  /** Parse, validate and split the batches into columns (streamed together). */
  read: number;
  encode: number;
  fit: number;
  holdoutMetrics: number;
  serialize: number;
}

export interface BatchSource {
  name: string;
  open(): Promise<NodeJS.ReadableStream> | NodeJS.ReadableStream;
}

/** True when a row belongs to the holdout: the same invoice is held out in every run. */
export function isHoldoutRow(invoiceId: string, holdoutFraction = DEFAULT_HOLDOUT_FRACTION): boolean {
  return stableFraction(invoiceId) < holdoutFraction;
}

/** Training rows and holdout rows, split as they stream in and held as columns, not objects. */
class TrainingSet {
  readonly train = new InvoiceColumns();
  readonly holdout = new InvoiceColumns();

  constructor(private readonly holdoutFraction: number) {}

  add(row: InvoiceRow): void {
    if (isHoldoutRow(row.invoiceId, this.holdoutFraction)) this.holdout.pushLabelled(row);
    else this.train.pushLabelled(row);
  }
}

/** Streams each batch through the parser (rejected rows are counted, never trained on) and trains. */
export async function trainFromBatches(
  sources: BatchSource[],
  options: TrainingOptions,
): Promise<TrainingResult> {
  const cpuAtStart = process.cpuUsage();
  const startedAt = performance.now();
  const set = new TrainingSet(checkedOptions(options).holdoutFraction);
  let rejectedRows = 0;
  for (const source of sources) {
    const stream = await source.open();
    for await (const items of parseInvoiceBatchChunks(stream, { fileName: source.name })) {
      for (const item of items) {
        if (item.kind === 'accepted') set.add(item.row);
        else rejectedRows++;
      }
    }
  }
  return finish(
    set,
    options,
    sources.map((s) => s.name),
    rejectedRows,
    cpuAtStart,
    startedAt,
  );
}

/** Trains on rows already in memory (replays, benchmarks); `dataWindow` names them in the metadata. */
export async function trainFromRows(
  rows: Iterable<InvoiceRow>,
  options: TrainingOptions & { dataWindow?: string[] },
): Promise<TrainingResult> {
  const cpuAtStart = process.cpuUsage();
  const startedAt = performance.now();
  const set = new TrainingSet(checkedOptions(options).holdoutFraction);
  for (const row of rows) set.add(row);
  return finish(set, options, options.dataWindow ?? [], 0, cpuAtStart, startedAt);
}

function checkedOptions(options: TrainingOptions): { holdoutFraction: number } {
  const holdoutFraction = options.holdoutFraction ?? DEFAULT_HOLDOUT_FRACTION;
  const problems: { path: string; message: string }[] = [];
  if (!(holdoutFraction >= 0 && holdoutFraction < 1)) {
    problems.push({ path: 'holdoutFraction', message: 'must be in [0, 1)' });
  }
  for (const key of ['trees', 'minSamplesLeaf', 'maxDepth'] as const) {
    if (!Number.isInteger(options[key]) || options[key] < 1) {
      problems.push({ path: key, message: 'must be a positive integer' });
    }
  }
  if (typeof options.maxFeatures === 'number' && !(options.maxFeatures >= 1)) {
    problems.push({ path: 'maxFeatures', message: "must be 'sqrt', 'all' or at least 1" });
  }
  if (problems.length > 0) {
    throw new ValidationError(
      `Invalid training options: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      problems,
    );
  }
  return { holdoutFraction };
}

async function finish(
  set: TrainingSet,
  options: TrainingOptions,
  batchNames: string[],
  rejectedRows: number,
  cpuAtStart: NodeJS.CpuUsage,
  startedAt: number,
): Promise<TrainingResult> {
  let lapAt = startedAt;
  const lap = (): number => {
    const now = performance.now();
    const seconds = (now - lapAt) / 1000;
    lapAt = now;
    return seconds;
  };
  const read = lap();
  const { train, holdout } = set;
  if (train.length === 0) {
    throw new ValidationError(
      `No training rows: ${holdout.length} rows were held out and ${rejectedRows} rejected`,
    );
  }
  const previous = options.warmStartFrom;
  const { encoder, matrix } = previous
    ? previous.encoder.extend(train, { shared: true })
    : FeatureEncoder.fit(train, { shared: true });
  const classes = sortedClasses([...(previous?.forest.classes ?? []), ...train.labelDictionary.values]);
  if (classes.length > 255)
    throw new ValidationError(`Too many VAT classes (${classes.length}, at most 255)`);
  const labels = new Uint8Array(new SharedArrayBuffer(train.length));
  const labelRank = train.labelDictionary.values.map((c) => classes.indexOf(c));
  const labelIds = train.labelIds;
  for (let r = 0; r < train.length; r++) labels[r] = labelRank[labelIds[r]];
  const encode = lap();

  const newTrees = previous
    ? Math.min(options.trees, options.warmStartTrees ?? Math.ceil(options.trees * WARM_START_NEW_SHARE))
    : options.trees;
  let fitThreads = 1;
  const grown = await trainForest(
    {
      bins: matrix.bins,
      rows: matrix.rows,
      features: matrix.features,
      binCounts: encoder.binCounts,
      labels,
      classCount: classes.length,
    },
    classes,
    {
      trees: newTrees,
      maxFeatures: options.maxFeatures,
      minSamplesLeaf: options.minSamplesLeaf,
      maxDepth: options.maxDepth,
      seed: options.seed,
      threads: options.threads,
      firstTreeIndex: previous ? previous.forest.trees.length : 0,
      onTreeDone: options.onProgress,
      onThreads: (threads) => {
        fitThreads = threads;
      },
    },
  );
  const forest: Forest = previous ? mergeForests(previous.forest, grown, options.trees, classes) : grown;
  const fit = lap();

  const evaluator = new ChunkedEvaluator({ encoder, forest });
  evaluator.addColumns(holdout);
  const holdoutReport = evaluator.report();
  const holdoutMetrics = lap();

  const trainedAt = options.trainedAt ?? new Date().toISOString();
  const cpu = process.cpuUsage(cpuAtStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const dataWindow = [...new Set([...(previous?.metadata.dataWindow ?? []), ...batchNames])];
  const metadata: Omit<ModelMetadata, 'sizeBytes'> = {
    modelName: options.modelName,
    versionId: options.versionId ?? defaultVersionId(trainedAt, options.seed),
    trainedAt,
    featureSchemaVersion: FEATURE_SCHEMA_VERSION,
    algorithm: ALGORITHM,
    hyperparameters: {
      trees: options.trees,
      maxFeatures: options.maxFeatures,
      featuresPerSplit: resolveFeaturesPerSplit(options.maxFeatures, matrix.features),
      minSamplesLeaf: options.minSamplesLeaf,
      maxDepth: options.maxDepth,
      seed: options.seed,
      holdoutFraction: options.holdoutFraction ?? DEFAULT_HOLDOUT_FRACTION,
      treesGrown: newTrees,
    },
    dataWindow,
    rows: { train: train.length, holdout: holdout.length },
    holdoutMetrics: { accuracy: holdoutReport.accuracy, macroF1: holdoutReport.macroF1 },
    classes,
    warmStartedFrom: previous?.metadata.versionId ?? null,
    trainingCpuSeconds: Math.round(cpuSeconds * 1000) / 1000,
  };
  // The artifact holds only what the inputs determine; the measured CPU time goes to the version
  // record beside it (result.metadata), so equal inputs give equal bytes.
  const { model, text } = sealModel({ ...metadata, trainingCpuSeconds: null }, encoder, forest);
  const phaseSeconds = { read, encode, fit, holdoutMetrics, serialize: lap() };
  return {
    model,
    metadata: { ...model.metadata, trainingCpuSeconds: metadata.trainingCpuSeconds },
    rejectedRows,
    cpuSeconds,
    holdout: holdoutReport,
    artifact: text,
    phaseSeconds,
    fitThreads,
  };
}

/** e.g. 20261123T101500Z-s42: sortable, and valid as a registry version id. */
function defaultVersionId(trainedAt: string, seed: number): string {
  return `${trainedAt.replace(/[-:]/g, '').replace(/\.\d+/, '')}-s${seed}`;
}
