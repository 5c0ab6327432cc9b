import { z } from 'zod';
import { ModelInvalidError, ValidationError, describeError } from '../errors';
import type { ParsedRecord } from '../invoices/parser';
import type { InvoiceRow } from '../invoices/schema';
import { decodeForest, FOREST_JSON_SCHEMA, forestToJson } from '../model/artifact';
import { MODEL_METADATA_SCHEMA, type ModelMetadata } from '../model/metadata';
import { resolveFeaturesPerSplit, trainForest, type Forest } from '../model/randomForest';
import { ALGORITHM, DEFAULT_HOLDOUT_FRACTION, isHoldoutRow } from '../model/training';
import { parseJsonWith } from '../validation';
import {
  DECLARED_ENCODER_STATE_SCHEMA,
  DeclaredColumns,
  DeclaredFeatureEncoder,
  encodingVersion,
  LEGACY_DECLARATION,
  type EncodingDeclaration,
} from './featureEncoding';
import type { TrainingModeSetting } from '../policy/trainingMode';
import type { PipelineDefinition } from './manifest';
import { MultiPipelineScorer, type DeclaredPredictor, type PipelineScore } from './multiScoring';

/**
 * A model of any declared pipeline: trained with the pipeline's own encoding and stored as an
 * artifact that carries that encoding (declaration included), so it reads rows its own way for as
 * long as it lives. The metadata is the registry's usual record; `featureSchemaVersion` is the
 * pipeline's encoding version. Full fits only: warm start stays with the single-model trainer.
 */
export const DECLARED_ARTIFACT_FORMAT = 'green-ml/declared-random-forest';
export const DECLARED_ARTIFACT_FORMAT_VERSION = 1;

const DECLARED_ARTIFACT_SCHEMA = z.strictObject({
  format: z.literal(DECLARED_ARTIFACT_FORMAT),
  formatVersion: z.literal(DECLARED_ARTIFACT_FORMAT_VERSION),
  metadata: MODEL_METADATA_SCHEMA,
  encoder: DECLARED_ENCODER_STATE_SCHEMA,
  forest: FOREST_JSON_SCHEMA,
});

/**
 * Which artifact a pipeline's training writes. A pipeline that reads rows exactly as the single
 * model always has (label `vatRatePercent`, today's features in today's order: the default pipeline,
 * and `vat-rate` in the sample file) keeps the single-model artifact, so it keeps warm starts and
 * every reader of today's models; any other declaration trains in full into the declared artifact.
 * Decided by the encoding version, the same identity that tells an old model from a new one, so
 * editing a pipeline's features moves it to the declared format at its next retrain.
 */
export type ArtifactFormat = 'single-model' | 'declared';

export function artifactFormatFor(pipeline: EncodingDeclaration): ArtifactFormat {
  return encodingVersion(pipeline) === encodingVersion(LEGACY_DECLARATION) ? 'single-model' : 'declared';
}

/**
 * How a pipeline's retrains train: TRAINING_MODE for the single-model artifact; a declared artifact
 * always refits (its trainer has no warm start). The evaluator judges drops and the launcher picks
 * the window by the same answer.
 */
export function trainingModeSettingFor(
  pipeline: EncodingDeclaration,
  setting: TrainingModeSetting,
): TrainingModeSetting {
  return artifactFormatFor(pipeline) === 'declared' ? 'full' : setting;
}

/** What a training job needs of a declaration (knobs such as regions or thresholds stay with the orchestrator). */
export type TrainingDeclaration = Pick<PipelineDefinition, 'name' | 'label' | 'features' | 'forest'>;

/** The training container's variable carrying a TrainingDeclaration as JSON (containers/training/jobSettings.ts). */
export const PIPELINE_DEFINITION_ENV = 'PIPELINE_DEFINITION';

export function trainingDeclaration(pipeline: PipelineDefinition): TrainingDeclaration {
  const { name, label, features, forest } = pipeline;
  return { name, label, features, forest };
}

export interface DeclaredModel extends DeclaredPredictor {
  readonly metadata: ModelMetadata;
}

export interface DeclaredTrainingOptions {
  seed: number;
  versionId: string;
  /** Blob or file names of the batches, oldest first (the metadata's data window). */
  dataWindow: string[];
  holdoutFraction?: number;
  threads?: number;
  now?: () => Date;
}

export interface DeclaredTrainingResult {
  model: DeclaredModel;
  artifact: string;
  holdout: PipelineScore;
  rowsRejected: number;
}

/** Trains `pipeline` on accepted rows (rejected ones are counted), holding out rows by invoice-id hash. */
export async function trainDeclaredModel(
  pipeline: TrainingDeclaration,
  records: AsyncIterable<ParsedRecord> | Iterable<ParsedRecord>,
  options: DeclaredTrainingOptions,
): Promise<DeclaredTrainingResult> {
  const cpuAtStart = process.cpuUsage();
  const holdoutFraction = options.holdoutFraction ?? DEFAULT_HOLDOUT_FRACTION;
  const train = new DeclaredColumns(pipeline);
  const holdoutRows: InvoiceRow[] = [];
  let rowsRejected = 0;
  for await (const record of records) {
    if (record.kind === 'rejected') rowsRejected++;
    else if (isHoldoutRow(record.row.invoiceId, holdoutFraction)) holdoutRows.push(record.row);
    else train.push(record.row, true);
  }
  if (train.length === 0 || holdoutRows.length === 0) {
    throw new ValidationError(
      `Too few rows to train ${pipeline.name}: ${train.length} training, ${holdoutRows.length} held out, ${rowsRejected} rejected`,
    );
  }
  const { encoder, matrix, labels } = DeclaredFeatureEncoder.fit(train, { shared: true });
  const { trees, maxFeatures, minSamplesLeaf, maxDepth } = pipeline.forest;
  const forest = await trainForest(
    { ...matrix, binCounts: encoder.binCounts, labels, classCount: encoder.classes.length },
    [...encoder.classes],
    { trees, maxFeatures, minSamplesLeaf, maxDepth, seed: options.seed, threads: options.threads },
  );
  const scorer = new MultiPipelineScorer([{ pipeline, champion: { encoder, forest } }]);
  for (const row of holdoutRows) scorer.add(row);
  const [outcome] = scorer.finish();
  if (outcome.kind !== 'scored') throw new ValidationError(`holdout of ${pipeline.name} was not scored`);
  const cpu = process.cpuUsage(cpuAtStart);
  const metadata: Omit<ModelMetadata, 'sizeBytes'> = {
    modelName: pipeline.name,
    versionId: options.versionId,
    trainedAt: (options.now ?? (() => new Date()))().toISOString(),
    featureSchemaVersion: encoder.version,
    algorithm: ALGORITHM,
    hyperparameters: {
      trees,
      maxFeatures,
      featuresPerSplit: resolveFeaturesPerSplit(maxFeatures, matrix.features),
      minSamplesLeaf,
      maxDepth,
      seed: options.seed,
      holdoutFraction,
      label: pipeline.label,
    },
    dataWindow: options.dataWindow,
    rows: { train: train.length, holdout: holdoutRows.length },
    holdoutMetrics: { accuracy: outcome.score.accuracy, macroF1: outcome.score.macroF1 },
    classes: [...encoder.classes],
    warmStartedFrom: null,
    trainingCpuSeconds: Math.round(((cpu.user + cpu.system) / 1e6) * 1000) / 1000,
  };
  // As for the single-model artifact: the bytes hold only what the inputs determine (the crash
  // matrix compares them across runs); the measured CPU goes to the version record beside them.
  const { model, artifact } = sealDeclaredModel({ ...metadata, trainingCpuSeconds: null }, encoder, forest);
  return {
    model: { ...model, metadata: { ...model.metadata, trainingCpuSeconds: metadata.trainingCpuSeconds } },
    artifact,
    holdout: outcome.score,
    rowsRejected,
  };
}

/** The artifact text with `metadata.sizeBytes` equal to its own byte length (a fixed point). */
function sealDeclaredModel(
  metadata: Omit<ModelMetadata, 'sizeBytes'>,
  encoder: DeclaredFeatureEncoder,
  forest: Forest,
): { model: DeclaredModel; artifact: string } {
  const body = `,"encoder":${JSON.stringify(encoder.toJSON())},"forest":${JSON.stringify(forestToJson(forest))}}`;
  let sizeBytes = 0;
  let head = '';
  for (let attempt = 0; attempt < 10; attempt++) {
    head = `{"format":"${DECLARED_ARTIFACT_FORMAT}","formatVersion":${DECLARED_ARTIFACT_FORMAT_VERSION},"metadata":${JSON.stringify({ ...metadata, sizeBytes })}`;
    const total = Buffer.byteLength(head) + Buffer.byteLength(body);
    if (total === sizeBytes) break;
    sizeBytes = total;
  }
  return { model: { metadata: { ...metadata, sizeBytes }, encoder, forest }, artifact: head + body };
}

/** Loads a declared artifact; anything malformed or inconsistent is a ModelInvalidError. */
export function deserializeDeclaredModel(text: string): DeclaredModel {
  let artifact: z.output<typeof DECLARED_ARTIFACT_SCHEMA>;
  try {
    artifact = parseJsonWith(DECLARED_ARTIFACT_SCHEMA, text, 'declared model artifact');
  } catch (error) {
    if (error instanceof ValidationError) throw new ModelInvalidError(error.message, { cause: error });
    throw error;
  }
  try {
    const encoder = DeclaredFeatureEncoder.fromJSON(artifact.encoder);
    if (artifact.metadata.featureSchemaVersion !== encoder.version) {
      throw new ModelInvalidError(
        `metadata says encoding ${artifact.metadata.featureSchemaVersion}, the encoder is ${encoder.version}`,
      );
    }
    const forest = decodeForest(artifact.forest, encoder);
    if (forest.classes.join('\n') !== artifact.metadata.classes.join('\n')) {
      throw new ModelInvalidError('metadata classes differ from the forest classes');
    }
    return { metadata: artifact.metadata, encoder, forest };
  } catch (cause) {
    throw new ModelInvalidError(
      `Declared model ${artifact.metadata.versionId} is inconsistent: ${describeError(cause)}`,
      { cause },
    );
  }
}
