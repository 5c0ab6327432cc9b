import { z } from 'zod';
import { SERVE_ACCOUNTING_SCHEMA } from '../serving/serveAccounting';

/**
 * The messages that cross the Durable boundary (orchestration input, activity inputs and outputs,
 * external events). They are stored in history and replayed, so they are small, JSON-only and
 * validated on the way in: an activity never trusts the shape it was called with.
 */
export { ORCHESTRATION_NAME } from './durableNames';
export const START_TRAINING_EVENT = 'startTraining';

export function retrainInstanceId(modelName: string): string {
  return `retrain-${modelName}`;
}

const isoDateTime = z.iso.datetime({ offset: true });

export const RETRAIN_REQUEST_SCHEMA = z.object({
  requestId: z.string().min(1),
  modelName: z.string().min(1),
  kind: z.enum(['retrainWhenGreen', 'retrainNow']),
  reason: z.string(),
  requestedAt: isoDateTime,
  deadline: isoDateTime,
  triggeringBatch: z.string().nullable(),
  relativeDrop: z.number().nullable(),
});
export type RetrainRequest = z.output<typeof RETRAIN_REQUEST_SCHEMA>;

export const ORCHESTRATION_TIMINGS_SCHEMA = z.object({
  containerPollSeconds: z.number().positive(),
  trainingTimeoutMinutes: z.number().positive(),
  expectedTrainingMinutes: z.number().positive(),
  healthCheckAttempts: z.number().int().positive(),
  healthCheckIntervalSeconds: z.number().positive(),
});
export type OrchestrationTimings = z.output<typeof ORCHESTRATION_TIMINGS_SCHEMA>;

export const ORCHESTRATION_INPUT_SCHEMA = z.object({
  request: RETRAIN_REQUEST_SCHEMA,
  timings: ORCHESTRATION_TIMINGS_SCHEMA,
  /** Runs served by this instance so far (continueAsNew keeps the count, not the history). */
  generation: z.number().int().nonnegative(),
});
export type OrchestrationInput = z.output<typeof ORCHESTRATION_INPUT_SCHEMA>;

export const WINDOW_PLAN_SCHEMA = z.object({
  kind: z.enum(['window', 'startNow']),
  region: z.string(),
  startAt: isoDateTime,
  expectedGramsPerKwh: z.number().nullable(),
  reason: z.string(),
  forecastQuality: z.string().nullable(),
  /** Expected intensity of starting now in the home region, for the saving shown in reports. */
  baselineGramsPerKwh: z.number().nullable(),
});
export type WindowPlan = z.output<typeof WINDOW_PLAN_SCHEMA>;

export const START_TRAINING_EVENT_SCHEMA = z.object({
  reason: z.enum(['window-open', 'deadline', 'escalated']),
  plan: WINDOW_PLAN_SCHEMA.nullable(),
});
export type StartTrainingEvent = z.output<typeof START_TRAINING_EVENT_SCHEMA>;

export const CONTAINER_STATE_SCHEMA = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('pending') }),
  z.object({ kind: z.literal('running'), startedAt: z.string(), endpoint: z.string().optional() }),
  z.object({
    kind: z.literal('succeeded'),
    startedAt: z.string(),
    finishedAt: z.string(),
    exitCode: z.literal(0),
  }),
  z.object({
    kind: z.literal('failed'),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    exitCode: z.number().nullable(),
    reason: z.string(),
  }),
  z.object({ kind: z.literal('missing') }),
]);
export type ContainerState = z.output<typeof CONTAINER_STATE_SCHEMA>;

export const STAGE_USAGE_SCHEMA = z.object({
  stage: z.string(),
  region: z.string(),
  startedAt: isoDateTime,
  endedAt: isoDateTime,
  cpuCores: z.number().positive(),
  memoryGb: z.number().positive(),
  cpuSeconds: z.number().nonnegative().nullable(),
  peakMemoryBytes: z.number().nonnegative().nullable(),
  resourceSource: z.enum(['azure-monitor', 'local-process', 'function-cpu', 'assumed']),
  functionalUnits: z.number().nonnegative(),
  /** Serve stages: the plan, reserved replica time, predictions and cold starts. */
  serving: SERVE_ACCOUNTING_SCHEMA.optional(),
});
export type StageUsage = z.output<typeof STAGE_USAGE_SCHEMA>;

export const COMPARISON_SCHEMA = z.object({
  challengerVersionId: z.string(),
  championVersionId: z.string().nullable(),
  challengerAccuracy: z.number(),
  championAccuracy: z.number().nullable(),
  holdoutRows: z.number().int().nonnegative(),
  verdict: z.enum(['promote', 'reject']),
  reason: z.string(),
  usage: STAGE_USAGE_SCHEMA,
});
export type Comparison = z.output<typeof COMPARISON_SCHEMA>;

export const RUN_OUTCOME_SCHEMA = z.enum([
  'promoted',
  'rejected-worse',
  'training-failed',
  'rollout-failed',
  'promotion-conflict',
  'failed',
]);
export type RunOutcome = z.output<typeof RUN_OUTCOME_SCHEMA>;

export const RUN_SUMMARY_SCHEMA = z.object({
  runId: z.string(),
  modelName: z.string(),
  request: RETRAIN_REQUEST_SCHEMA,
  plan: WINDOW_PLAN_SCHEMA.nullable(),
  outcome: RUN_OUTCOME_SCHEMA,
  detail: z.string(),
  challengerVersionId: z.string().nullable(),
  comparison: COMPARISON_SCHEMA.nullable(),
  stages: z.array(STAGE_USAGE_SCHEMA),
  containersCreated: z.array(z.string()),
  containersDeleted: z.array(z.string()),
  startedAt: isoDateTime,
  endedAt: isoDateTime,
});
export type RunSummary = z.output<typeof RUN_SUMMARY_SCHEMA>;
