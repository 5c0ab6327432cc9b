import { z } from 'zod';
import { FAILURE_INFO_SCHEMA } from '../errors/classify';
import {
  COMPARISON_SCHEMA,
  CONTAINER_STATE_SCHEMA,
  RETRAIN_REQUEST_SCHEMA,
  RUN_SUMMARY_SCHEMA,
  STAGE_USAGE_SCHEMA,
  WINDOW_PLAN_SCHEMA,
} from './contracts';
import { REGISTERED_ACTIVITY_NAMES } from './durableNames';
import { SERVING_SCHEMA } from './servingState';
import { SERVER_PIN_SCHEMA } from '../modelApi/serverPin';
import { SERVING_PLAN_RECORD_SCHEMA } from '../serving/servingPlanRecord';

/**
 * Every activity's contract in one table: name -> input schema, output schema. The activity side
 * (functions/activities.ts) parses its input and its own output with them; the orchestrator side
 * (functions/orchestration/activityCalls.ts) parses the input it sends and the output it gets.
 * Implementations and calls are typed from the same table, so drift between the two sides is a
 * compile error, and a value that slips past the types is a ValidationError on either side.
 */
const isoDateTime = z.iso.datetime({ offset: true });

export const LAUNCH_RESULT_SCHEMA = z.object({
  groupName: z.string(),
  dataWindow: z.array(z.string()),
  cpuCores: z.number(),
  memoryGb: z.number(),
  region: z.string(),
  launchedAt: isoDateTime,
});
export type LaunchResult = z.output<typeof LAUNCH_RESULT_SCHEMA>;

const GROUP_INPUT = z.object({ groupName: z.string().min(1) });

export const HEALTH_SCHEMA = z.object({
  healthy: z.boolean(),
  /** The container is gone (a host restart, an eviction): relaunching it can help, waiting cannot. */
  lost: z.boolean(),
  endpoint: z.string().nullable(),
  servingVersion: z.string().nullable(),
  detail: z.string(),
  /** The certificate an ACI model API serves: the serving record keeps it so every call pins it. */
  tls: SERVER_PIN_SCHEMA.optional(),
});
export type HealthReport = z.output<typeof HEALTH_SCHEMA>;

export const PROMOTION_SCHEMA = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('promoted'), versionId: z.string() }),
  z.object({ kind: z.literal('conflict'), currentChampion: z.string().nullable() }),
]);

export const ACTIVITY_CONTRACTS = {
  planRetrain: {
    input: z.object({
      request: RETRAIN_REQUEST_SCHEMA,
      nowIso: isoDateTime,
      /** Set when the orchestration turned the request into `retrainNow`; the table is told. */
      escalation: z.string().min(1).nullable(),
    }),
    output: WINDOW_PLAN_SCHEMA,
  },
  launchTraining: {
    input: z.object({
      runId: z.string().min(8),
      instanceId: z.string(),
      requestId: z.string(),
      modelName: z.string(),
      versionId: z.string(),
      region: z.string(),
      /** 1 for the first container; a lost or killed training is relaunched under a new name. */
      attempt: z.number().int().positive(),
      /** The run's start: the version's trainedAt, the same on every attempt and replay. */
      trainedAt: isoDateTime.optional(),
      /** A relaunch trains on the first attempt's window, whatever was accepted since. */
      dataWindow: z.array(z.string()).min(1).optional(),
      /** The request's kind: TRAINING_MODE=adaptive warm-starts only a small drop. */
      decisionKind: z.enum(['retrainWhenGreen', 'retrainNow']).optional(),
    }),
    output: LAUNCH_RESULT_SCHEMA,
  },
  containerStatus: { input: GROUP_INPUT, output: CONTAINER_STATE_SCHEMA },
  collectContainerUsage: {
    input: z.object({
      groupName: z.string(),
      stage: z.string(),
      region: z.string(),
      cpuCores: z.number().positive(),
      memoryGb: z.number().positive(),
      launchedAt: isoDateTime,
      endedAt: isoDateTime,
    }),
    output: STAGE_USAGE_SCHEMA,
  },
  deleteContainer: { input: GROUP_INPUT, output: z.enum(['deleted', 'already-gone']) },
  compareChallenger: {
    input: z.object({
      modelName: z.string(),
      challengerVersionId: z.string(),
      dataWindow: z.array(z.string()).min(1),
    }),
    output: COMPARISON_SCHEMA,
  },
  promoteChallenger: {
    input: z.object({
      modelName: z.string(),
      versionId: z.string(),
      expectedChampion: z.string().nullable(),
      reason: z.string().min(1),
    }),
    output: PROMOTION_SCHEMA,
  },
  rollbackChampion: {
    input: z.object({ modelName: z.string(), expectedChampion: z.string(), reason: z.string().min(1) }),
    output: z.object({ championVersionId: z.string().nullable() }),
  },
  /** Where, how big, which trees and how it scales: the plan the launch and the serve stage follow. */
  planModelServing: {
    input: z.object({ modelName: z.string(), versionId: z.string(), nowIso: isoDateTime }),
    output: SERVING_PLAN_RECORD_SCHEMA,
  },
  launchModelApi: {
    input: z.object({
      runId: z.string().min(8),
      instanceId: z.string(),
      modelName: z.string(),
      versionId: z.string(),
      plan: SERVING_PLAN_RECORD_SCHEMA,
    }),
    output: LAUNCH_RESULT_SCHEMA,
  },
  checkModelApiHealth: {
    input: z.object({ groupName: z.string(), expectedVersionId: z.string() }),
    output: HEALTH_SCHEMA,
  },
  switchServing: {
    input: SERVING_SCHEMA.extend({ modelName: z.string() }),
    /** Every API still to retire (the one replaced now, and any a crash left unretired). */
    output: z.object({ retiring: z.array(SERVING_SCHEMA) }),
  },
  retireModelApi: {
    input: z.object({ modelName: z.string(), previous: SERVING_SCHEMA, endedAt: isoDateTime }),
    output: STAGE_USAGE_SCHEMA.nullable(),
  },
  recordRun: {
    input: RUN_SUMMARY_SCHEMA,
    output: z.object({ runId: z.string(), totalGrams: z.number().nullable() }),
  },
  completeRequest: {
    input: z.object({ modelName: z.string(), requestId: z.string() }),
    output: z.object({ next: RETRAIN_REQUEST_SCHEMA.nullable() }),
  },
} as const satisfies Record<string, { input: z.ZodType; output: z.ZodType }>;

export type ActivityName = keyof typeof ACTIVITY_CONTRACTS;
export const ACTIVITY_NAMES = Object.keys(ACTIVITY_CONTRACTS) as ActivityName[];

/** The light name list the Functions entry registers (durableNames.ts) is exactly this table's keys. */
type Registered = (typeof REGISTERED_ACTIVITY_NAMES)[number];
export const REGISTERED_NAMES_MATCH_TABLE: [
  Exclude<ActivityName, Registered>,
  Exclude<Registered, ActivityName>,
] extends [never, never]
  ? true
  : 'durableNames.ts REGISTERED_ACTIVITY_NAMES differs from ACTIVITY_CONTRACTS' = true;
export type ActivityInput<N extends ActivityName> = z.input<(typeof ACTIVITY_CONTRACTS)[N]['input']>;
export type ParsedActivityInput<N extends ActivityName> = z.output<(typeof ACTIVITY_CONTRACTS)[N]['input']>;
export type ActivityOutput<N extends ActivityName> = z.output<(typeof ACTIVITY_CONTRACTS)[N]['output']>;

/**
 * What an activity returns through Durable: its output, or the classified failure. A failure is
 * returned, not thrown, so that `retryable` and `Retry-After` reach the orchestrator intact (a
 * thrown error arrives as a bare message) and the orchestrator decides about retries itself.
 */
export const ACTIVITY_RESULT_SCHEMA = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), value: z.unknown() }),
  z.object({ ok: z.literal(false), failure: FAILURE_INFO_SCHEMA }),
]);
export type ActivityResult = z.output<typeof ACTIVITY_RESULT_SCHEMA>;
