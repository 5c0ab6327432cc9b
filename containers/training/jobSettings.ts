import { z } from 'zod';
import { ConfigError } from '../../shared/errors';
import { assertBatchName } from '../../shared/pipeline/invoiceStore';
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

export interface TrainingJob {
  modelName: string;
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
  if (!parsed.success) {
    const problems = describeIssues(parsed.error).map((issue) => {
      const [key, ...rest] = issue.path.split('.');
      return { key, reason: rest.length > 0 ? `[${rest.join('.')}] ${issue.message}` : issue.message };
    });
    const list = problems.map((p) => `${p.key}: ${p.reason}`).join('; ');
    throw new ConfigError(`Invalid training job (${problems.length}): ${list}`, problems);
  }
  const job = parsed.data;
  return {
    modelName: job.MODEL_NAME,
    versionId: job.VERSION_ID,
    dataBlobs: job.DATA_BLOBS,
    mode:
      job.TRAINING_MODE === 'warm-start' && job.WARM_START_FROM
        ? { kind: 'warm-start', fromVersionId: job.WARM_START_FROM }
        : { kind: 'full' },
    forest: {
      trees: job.FOREST_TREES,
      maxFeatures: job.FOREST_MAX_FEATURES,
      minSamplesLeaf: job.FOREST_MIN_SAMPLES_LEAF,
      maxDepth: job.FOREST_MAX_DEPTH,
    },
    seed: job.SEED,
    trainedAt: job.TRAINED_AT === undefined ? null : new Date(job.TRAINED_AT).toISOString(),
  };
}
