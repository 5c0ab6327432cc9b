import { z } from 'zod';
import { ConfigError } from '../../shared/errors';
import { assertBatchName } from '../../shared/pipeline/invoiceStore';
import {
  artifactFormatFor,
  PIPELINE_DEFINITION_ENV,
  trainingDeclaration,
  type TrainingDeclaration,
} from '../../shared/pipelines/declaredModel';
import { pipelineDefaultsFromEnv, resolvePipelineManifest } from '../../shared/pipelines/manifest';
import { REGISTRY_MODEL_NAME_SCHEMA, REGISTRY_VERSION_ID_SCHEMA } from '../../shared/registry';
import { describeIssues } from '../../shared/validation';

/**
 * What one training run is asked to do, read from the container's environment. The launcher
 * (shared/pipeline/containerActivities.ts launchTraining) writes exactly these variables; storage
 * access is read separately through loadSettings so the container and the Function App agree on it.
 */
export type TrainingMode = { kind: 'full' } | { kind: 'warm-start'; fromVersionId: string };

export interface ForestHyperparameters {
  trees: number;
  maxFeatures: 'sqrt' | 'all' | number;
  minSamplesLeaf: number;
  maxDepth: number;
}

/**
 * What the job trains. Without PIPELINE_DEFINITION: the single model (VAT-rate features, the
 * single-model artifact, warm start possible), exactly as before pipelines were declared. With it:
 * the declared pipeline's own label, features and forest, into the declared artifact (full fits).
 */
export type TrainingEncoding = { kind: 'single-model' } | { kind: 'declared'; pipeline: TrainingDeclaration };

export interface TrainingJob {
  modelName: string;
  encoding: TrainingEncoding;
  versionId: string;
  /** Accepted batch names, oldest first: the data window. */
  dataBlobs: string[];
  mode: TrainingMode;
  forest: ForestHyperparameters;
  seed: number;
  /** The run's start, recorded as the version's trainedAt (absent: the time training ends). */
  trainedAt: string | null;
}

const positiveInt = z.coerce.number().int('expected a whole number').positive('must be positive');

const batchName = z.string().superRefine((name, ctx) => {
  try {
    assertBatchName(name);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

const dataBlobs = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected a JSON array of accepted batch names' });
      return z.NEVER;
    }
  })
  .pipe(
    z
      .array(batchName, 'expected a JSON array of accepted batch names')
      .min(1, 'at least one batch is required')
      .max(1000, 'at most 1000 batches')
      .refine((names) => new Set(names).size === names.length, 'batch names must be distinct'),
  );

const JOB_ENV_SCHEMA = z
  .object({
    MODEL_NAME: REGISTRY_MODEL_NAME_SCHEMA,
    VERSION_ID: REGISTRY_VERSION_ID_SCHEMA,
    DATA_BLOBS: dataBlobs,
    TRAINING_MODE: z.enum(['full', 'warm-start']).default('full'),
    WARM_START_FROM: REGISTRY_VERSION_ID_SCHEMA.optional(),
    FOREST_TREES: positiveInt.max(1000, 'at most 1000').default(50),
    FOREST_MAX_FEATURES: z
      .union([z.literal('sqrt'), z.literal('all'), positiveInt], "expected 'sqrt', 'all' or a number")
      .default('sqrt'),
    FOREST_MIN_SAMPLES_LEAF: positiveInt.default(1),
    FOREST_MAX_DEPTH: positiveInt.max(64, 'at most 64').default(32),
    SEED: z.coerce.number().int('expected a whole number').min(0).max(0xffffffff).default(1),
    TRAINED_AT: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 date-time' }).optional(),
    [PIPELINE_DEFINITION_ENV]: z.string().optional(),
  })
  .superRefine((env, ctx) => {
    if (env.TRAINING_MODE === 'warm-start' && !env.WARM_START_FROM) {
      ctx.addIssue({
        code: 'custom',
        path: ['WARM_START_FROM'],
        message: 'required with TRAINING_MODE=warm-start',
      });
    }
    if (env.TRAINING_MODE === 'full' && env.WARM_START_FROM) {
      ctx.addIssue({
        code: 'custom',
        path: ['WARM_START_FROM'],
        message: 'only allowed with TRAINING_MODE=warm-start',
      });
    }
    if (env.WARM_START_FROM && env.WARM_START_FROM === env.VERSION_ID) {
      ctx.addIssue({ code: 'custom', path: ['WARM_START_FROM'], message: 'must differ from VERSION_ID' });
    }
  });

/** Keys this schema reads; blank values count as unset, as loadSettings does. */
const JOB_KEYS = Object.keys(JOB_ENV_SCHEMA.shape);

/** Reads and checks the job variables; one ConfigError names every bad variable and why. */
export function parseTrainingJob(env: Record<string, string | undefined>): TrainingJob {
  const relevant: Record<string, string> = {};
  for (const key of JOB_KEYS) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') relevant[key] = value.trim();
  }
  const parsed = JOB_ENV_SCHEMA.safeParse(relevant);
  const problems: { key: string; reason: string }[] = parsed.success
    ? []
    : describeIssues(parsed.error).map((issue) => {
        const [key, ...rest] = issue.path.split('.');
        return { key, reason: rest.length > 0 ? `[${rest.join('.')}] ${issue.message}` : issue.message };
      });
  const definition = relevant[PIPELINE_DEFINITION_ENV];
  const encoding: TrainingEncoding =
    definition === undefined ? { kind: 'single-model' } : declaredEncoding(definition, relevant, problems);
  if (!parsed.success || problems.length > 0) {
    const list = problems.map((p) => `${p.key}: ${p.reason}`).join('; ');
    throw new ConfigError(`Invalid training job (${problems.length}): ${list}`, problems);
  }
  const job = parsed.data;
  const forest =
    encoding.kind === 'declared'
      ? encoding.pipeline.forest
      : {
          trees: job.FOREST_TREES,
          maxFeatures: job.FOREST_MAX_FEATURES,
          minSamplesLeaf: job.FOREST_MIN_SAMPLES_LEAF,
          maxDepth: job.FOREST_MAX_DEPTH,
        };
  return {
    modelName: job.MODEL_NAME,
    encoding,
    versionId: job.VERSION_ID,
    dataBlobs: job.DATA_BLOBS,
    mode:
      job.TRAINING_MODE === 'warm-start' && job.WARM_START_FROM
        ? { kind: 'warm-start', fromVersionId: job.WARM_START_FROM }
        : { kind: 'full' },
    forest,
    seed: job.SEED,
    trainedAt: job.TRAINED_AT === undefined ? null : new Date(job.TRAINED_AT).toISOString(),
  };
}

const FOREST_KEYS = ['trees', 'maxFeatures', 'minSamplesLeaf', 'maxDepth'] as const;

/** Variables a declaration replaces: set beside it they would be a second, contradicting source. */
const DECLARED_CONFLICTS = [
  'FOREST_TREES',
  'FOREST_MAX_FEATURES',
  'FOREST_MIN_SAMPLES_LEAF',
  'FOREST_MAX_DEPTH',
];

/**
 * PIPELINE_DEFINITION: the pipeline's label, features and forest as JSON, checked by the very rules
 * that check a pipelines file (known columns, kinds that fit them, label not a feature, ...), so a
 * declaration the Function App would refuse is refused here too, with the same reasons. Problems
 * are appended to `problems`, keyed PIPELINE_DEFINITION or the variable it conflicts with.
 */
function declaredEncoding(
  text: string,
  env: Record<string, string>,
  problems: { key: string; reason: string }[],
): TrainingEncoding {
  const key = PIPELINE_DEFINITION_ENV;
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    problems.push({ key, reason: 'expected the pipeline declaration as JSON' });
    return { kind: 'single-model' };
  }
  // The launcher sends the resolved forest; a partial one would silently take the schema's defaults
  // rather than the Function App's settings.
  const forest = (document as { forest?: unknown } | null)?.forest;
  const missing = FOREST_KEYS.filter(
    (k) => typeof forest !== 'object' || forest === null || !Object.hasOwn(forest, k),
  );
  if (missing.length > 0) {
    problems.push({ key, reason: `forest: ${missing.join(', ')} required (the resolved hyperparameters)` });
  }
  let pipeline: TrainingDeclaration;
  try {
    const declared = resolvePipelineManifest({ pipelines: [document] }, pipelineDefaultsFromEnv({}), key);
    pipeline = trainingDeclaration(declared.pipelines[0]);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // The manifest names the entry `pipeline "x"`; here there is only one, so the field path is enough.
    for (const p of error.problems)
      problems.push({ key, reason: `${p.key.replace(/^pipelines?(\[\d+\]| "[^"]*") /, '')}: ${p.reason}` });
    return { kind: 'single-model' };
  }
  if (env.MODEL_NAME !== undefined && pipeline.name !== env.MODEL_NAME) {
    problems.push({ key, reason: `declares "${pipeline.name}", but MODEL_NAME is "${env.MODEL_NAME}"` });
  }
  if (artifactFormatFor(pipeline) !== 'declared') {
    problems.push({
      key,
      reason:
        'reads rows as the single VAT-rate model does: train it without PIPELINE_DEFINITION (FOREST_* variables)',
    });
  }
  if (env.TRAINING_MODE === 'warm-start') {
    problems.push({ key: 'TRAINING_MODE', reason: 'a declared pipeline trains in full (no warm start)' });
  }
  for (const conflict of DECLARED_CONFLICTS) {
    if (env[conflict] !== undefined) {
      problems.push({ key: conflict, reason: `set by PIPELINE_DEFINITION.forest; leave it unset` });
    }
  }
  return { kind: 'declared', pipeline };
}
