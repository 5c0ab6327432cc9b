import { z } from 'zod';

/**
 * What every stored model version says about itself. The registry lists and compares versions by
 * this record alone (without loading the trees), so it is stored inside the artifact and beside it.
 */
export const MODEL_METADATA_SCHEMA = z.object({
  modelName: z.string().min(1),
  versionId: z.string().regex(/^[A-Za-z0-9._-]{1,80}$/),
  trainedAt: z.iso.datetime(),
  featureSchemaVersion: z.string().min(1),
  algorithm: z.string().min(1),
  hyperparameters: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])),
  /** Batches (blob names) the model was trained on, oldest first. */
  dataWindow: z.array(z.string()),
  rows: z.object({ train: z.number().int().nonnegative(), holdout: z.number().int().nonnegative() }),
  holdoutMetrics: z.object({ accuracy: z.number().min(0).max(1), macroF1: z.number().min(0).max(1) }),
  classes: z.array(z.string()).min(1),
  /** Previous version this one was warm-started from, if any. */
  warmStartedFrom: z.string().nullable(),
  trainingCpuSeconds: z.number().nonnegative().nullable(),
  sizeBytes: z.number().int().nonnegative(),
});

export type ModelMetadata = z.output<typeof MODEL_METADATA_SCHEMA>;
