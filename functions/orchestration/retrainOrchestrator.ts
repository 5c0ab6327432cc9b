import * as df from 'durable-functions';
import { z } from 'zod';
import { parseWith } from '../../shared/validation';
import {
  COMPARISON_SCHEMA,
  CONTAINER_STATE_SCHEMA,
  ORCHESTRATION_INPUT_SCHEMA,
  RETRAIN_REQUEST_SCHEMA,
  STAGE_USAGE_SCHEMA,
  START_TRAINING_EVENT,
  START_TRAINING_EVENT_SCHEMA,
  WINDOW_PLAN_SCHEMA,
  type Comparison,
  type OrchestrationInput,
  type RetrainRequest,
  type RunOutcome,
  type RunSummary,
  type StageUsage,
  type WindowPlan,
} from '../../shared/pipeline/contracts';
import { ACTIVITY } from './activityNames';
import { SERVING_SCHEMA } from '../../shared/pipeline/servingState';

/**
 * One singleton instance per model (instance id `retrain-<model>`), so two triggers never train
 * the same model at once. Steps: plan -> wait for the green window (or the deadline) -> train ->
 * compare challenger with champion on the same held-out rows -> promote only if better -> roll
 * out the model API (health-checked before the old one goes) -> record energy and SCI -> serve the
 * next queued request, if any, with continueAsNew.
 *
 * Replay rules: no clock but currentUtcDateTime, no I/O, no settings reads (timings come in the
 * input), waiting only through durable timers and external events.
 */
type Yielded = Generator<df.Task, unknown, unknown>;

function* awaitTask<T extends z.ZodType>(
  task: df.Task,
  schema: T,
  what: string,
): Generator<df.Task, z.output<T>, unknown> {
  const result: unknown = yield task;
  return parseWith(schema, result, what);
}

const LAUNCH_SCHEMA = z.object({
  groupName: z.string(),
  dataWindow: z.array(z.string()),
  cpuCores: z.number(),
  memoryGb: z.number(),
  region: z.string(),
  launchedAt: z.string(),
});
const PROMOTION_SCHEMA = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('promoted'), versionId: z.string() }),
  z.object({ kind: z.literal('conflict'), currentChampion: z.string().nullable() }),
]);
const HEALTH_SCHEMA = z.object({
  healthy: z.boolean(),
  endpoint: z.string().nullable(),
  servingVersion: z.string().nullable(),
  detail: z.string(),
});
const SWITCH_SCHEMA = z.object({ previousGroup: z.string().nullable(), previous: SERVING_SCHEMA.nullable() });
const DELETE_SCHEMA = z.enum(['deleted', 'already-gone']);
const NEXT_REQUEST_SCHEMA = z.object({ next: RETRAIN_REQUEST_SCHEMA.nullable() });
const RECORDED_SCHEMA = z.object({ runId: z.string(), totalGrams: z.number().nullable() });

export const retrainOrchestrator: df.OrchestrationHandler = function* (
  ctx: df.OrchestrationContext,
): Yielded {
  const input: OrchestrationInput = parseWith(
    ORCHESTRATION_INPUT_SCHEMA,
    ctx.df.getInput(),
    'orchestration input',
  );
  const { timings } = input;
  let request = input.request;
  const now = (): Date => ctx.df.currentUtcDateTime;
  const minutesFrom = (from: Date, minutes: number): Date => new Date(from.getTime() + minutes * 60_000);
  const runId = ctx.df.newGuid(`${ctx.df.instanceId}:${input.generation}`);
  const startedAt = now().toISOString();
  const activityRetry = new df.RetryOptions(5_000, 4);
  activityRetry.backoffCoefficient = 2;
  activityRetry.maxRetryIntervalInMilliseconds = 60_000;

  const setStep = (step: string, extra: Record<string, unknown> = {}): void =>
    ctx.df.setCustomStatus({ step, runId, requestId: request.requestId, kind: request.kind, ...extra });

  // Every (re-)plan of this run: the planning activity with the request as it stands now.
  const planFor = (current: RetrainRequest) =>
    awaitTask(
      ctx.df.callActivityWithRetry(ACTIVITY.planRetrain, activityRetry, {
        request: current,
        nowIso: now().toISOString(),
      }),
      WINDOW_PLAN_SCHEMA,
      'plan',
    );

  // --- plan ---
  setStep('planning');
  let plan: WindowPlan = yield* planFor(request);

  // --- wait for the green window: the carbon poller re-plans and signals; the deadline is the backstop ---
  if (request.kind === 'retrainWhenGreen' && Date.parse(plan.startAt) > now().getTime()) {
    const latestStart = minutesFrom(new Date(request.deadline), -timings.expectedTrainingMinutes);
    setStep('waiting-for-green-window', { plan, latestStart: latestStart.toISOString() });
    const signal = ctx.df.waitForExternalEvent(START_TRAINING_EVENT);
    const backstop = ctx.df.createTimer(latestStart.getTime() > now().getTime() ? latestStart : now());
    const winner: unknown = yield ctx.df.Task.any([signal, backstop]);
    if (winner === signal) {
      backstop.cancel();
      const event = parseWith(START_TRAINING_EVENT_SCHEMA, signal.result, 'startTraining event');
      if (event.reason === 'escalated' || event.plan === null) {
        request = { ...request, kind: 'retrainNow' };
        plan = yield* planFor(request);
      } else {
        plan = event.plan;
      }
    } else {
      // Deadline backstop fired before any window opened: start now, best allowed region.
      request = { ...request, kind: 'retrainNow', reason: `${request.reason}; deadline reached` };
      plan = yield* planFor(request);
    }
  }
  if (Date.parse(plan.startAt) > now().getTime()) {
    setStep('waiting-for-start', { plan });
    yield ctx.df.createTimer(new Date(plan.startAt));
  }

  // --- train, compare, promote, roll out ---
  const created: string[] = [];
  const deleted: string[] = [];
  let servingHandOver: string | null = null;
  const stages: StageUsage[] = [];
  let outcome: RunOutcome = 'failed';
  let detail = '';
  let comparison: Comparison | null = null;
  const versionId = `${now().toISOString().slice(0, 16).replace(/[-:T]/g, '')}-${runId.slice(0, 8)}`;
  let challengerVersionId: string | null = null;

  try {
    setStep('training', { plan, versionId });
    const launch = yield* awaitTask(
      ctx.df.callActivityWithRetry(ACTIVITY.launchTraining, activityRetry, {
        runId,
        instanceId: ctx.df.instanceId,
        requestId: request.requestId,
        modelName: request.modelName,
        versionId,
        region: plan.region,
      }),
      LAUNCH_SCHEMA,
      'training launch',
    );
    created.push(launch.groupName);
    const trainingDeadline = minutesFrom(now(), timings.trainingTimeoutMinutes);
    let state = yield* awaitTask(
      ctx.df.callActivityWithRetry(ACTIVITY.containerStatus, activityRetry, { groupName: launch.groupName }),
      CONTAINER_STATE_SCHEMA,
      'container state',
    );
    while (state.kind === 'pending' || state.kind === 'running') {
      if (now().getTime() >= trainingDeadline.getTime()) break;
      yield ctx.df.createTimer(new Date(now().getTime() + timings.containerPollSeconds * 1000));
      state = yield* awaitTask(
        ctx.df.callActivityWithRetry(ACTIVITY.containerStatus, activityRetry, {
          groupName: launch.groupName,
        }),
        CONTAINER_STATE_SCHEMA,
        'container state',
      );
    }
    setStep('collecting-usage', { plan, versionId });
    const trainingUsage = yield* awaitTask(
      ctx.df.callActivityWithRetry(ACTIVITY.collectContainerUsage, activityRetry, {
        groupName: launch.groupName,
        stage: 'train',
        region: launch.region,
        cpuCores: launch.cpuCores,
        memoryGb: launch.memoryGb,
        launchedAt: launch.launchedAt,
        endedAt: now().toISOString(),
      }),
      STAGE_USAGE_SCHEMA,
      'training usage',
    );
    stages.push(trainingUsage);
    yield* awaitTask(
      ctx.df.callActivityWithRetry(ACTIVITY.deleteContainer, activityRetry, { groupName: launch.groupName }),
      DELETE_SCHEMA,
      'delete',
    );
    deleted.push(launch.groupName);

    if (state.kind !== 'succeeded') {
      outcome = 'training-failed';
      detail =
        state.kind === 'failed'
          ? `training container failed (exit ${state.exitCode}): ${state.reason}`
          : `training did not finish within ${timings.trainingTimeoutMinutes} min (state ${state.kind})`;
    } else {
      challengerVersionId = versionId;
      setStep('comparing', { plan, versionId });
      comparison = yield* awaitTask(
        ctx.df.callActivityWithRetry(ACTIVITY.compareChallenger, activityRetry, {
          modelName: request.modelName,
          challengerVersionId: versionId,
          dataWindow: launch.dataWindow,
        }),
        COMPARISON_SCHEMA,
        'comparison',
      );
      stages.push(comparison.usage);
      if (comparison.verdict === 'reject') {
        outcome = 'rejected-worse';
        detail = comparison.reason;
      } else {
        setStep('promoting', { plan, versionId });
        const promotion = yield* awaitTask(
          ctx.df.callActivityWithRetry(ACTIVITY.promoteChallenger, activityRetry, {
            modelName: request.modelName,
            versionId,
            expectedChampion: comparison.championVersionId,
            reason: `${request.reason}; ${comparison.reason}`,
          }),
          PROMOTION_SCHEMA,
          'promotion',
        );
        if (promotion.kind === 'conflict') {
          outcome = 'promotion-conflict';
          detail = `champion changed meanwhile (now ${promotion.currentChampion ?? 'none'}); not promoted`;
        } else {
          setStep('rolling-out', { plan, versionId });
          const api = yield* awaitTask(
            ctx.df.callActivityWithRetry(ACTIVITY.launchModelApi, activityRetry, {
              runId,
              instanceId: ctx.df.instanceId,
              modelName: request.modelName,
              versionId,
            }),
            LAUNCH_SCHEMA,
            'model API launch',
          );
          created.push(api.groupName);
          let health = { healthy: false, endpoint: null as string | null, detail: 'not checked' };
          for (let attempt = 1; attempt <= timings.healthCheckAttempts; attempt++) {
            yield ctx.df.createTimer(new Date(now().getTime() + timings.healthCheckIntervalSeconds * 1000));
            health = yield* awaitTask(
              ctx.df.callActivityWithRetry(ACTIVITY.checkModelApiHealth, activityRetry, {
                groupName: api.groupName,
                expectedVersionId: versionId,
              }),
              HEALTH_SCHEMA,
              'health',
            );
            if (health.healthy) break;
          }
          if (health.healthy) {
            const switched = yield* awaitTask(
              ctx.df.callActivityWithRetry(ACTIVITY.switchServing, activityRetry, {
                modelName: request.modelName,
                groupName: api.groupName,
                endpoint: health.endpoint,
                versionId,
                region: api.region,
                cpuCores: api.cpuCores,
                memoryGb: api.memoryGb,
                since: now().toISOString(),
              }),
              SWITCH_SCHEMA,
              'serving switch',
            );
            servingHandOver = api.groupName;
            if (switched.previous) {
              setStep('retiring-old-api', { plan, versionId });
              const retired = yield* awaitTask(
                ctx.df.callActivityWithRetry(ACTIVITY.retireModelApi, activityRetry, {
                  modelName: request.modelName,
                  previous: switched.previous,
                  endedAt: now().toISOString(),
                }),
                STAGE_USAGE_SCHEMA.nullable(),
                'retire old API',
              );
              if (retired) stages.push(retired);
            }
            outcome = 'promoted';
            detail = `${versionId} promoted and serving at ${health.endpoint ?? 'unknown endpoint'}`;
          } else {
            // The old API keeps serving; registry and serving must agree, so undo the promotion.
            yield* awaitTask(
              ctx.df.callActivityWithRetry(ACTIVITY.rollbackChampion, activityRetry, {
                modelName: request.modelName,
                expectedChampion: versionId,
                reason: `model API for ${versionId} failed its health check: ${health.detail}`,
              }),
              z.object({ championVersionId: z.string().nullable() }),
              'rollback',
            );
            outcome = 'rollout-failed';
            detail = `model API failed its health check (${health.detail}); champion rolled back, old API kept serving`;
          }
        }
      }
    }
  } catch (error) {
    outcome = 'failed';
    detail = error instanceof Error ? error.message : String(error);
  }

  // --- cleanup: every group this run created, except the API it handed over to serving ---
  setStep('cleaning-up');
  for (const groupName of created) {
    if (deleted.includes(groupName) || groupName === servingHandOver) continue;
    try {
      yield* awaitTask(
        ctx.df.callActivityWithRetry(ACTIVITY.deleteContainer, activityRetry, { groupName }),
        DELETE_SCHEMA,
        'delete',
      );
      deleted.push(groupName);
    } catch (error) {
      // Recorded; the poller's orphan sweep deletes it later (it carries this run's tags).
      detail += `; could not delete ${groupName}: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  const summary: RunSummary = {
    runId,
    modelName: request.modelName,
    request,
    plan,
    outcome,
    detail,
    challengerVersionId,
    comparison,
    stages,
    containersCreated: created,
    containersDeleted: deleted,
    startedAt,
    endedAt: now().toISOString(),
  };
  setStep('recording', { outcome });
  const recorded = yield* awaitTask(
    ctx.df.callActivityWithRetry(ACTIVITY.recordRun, activityRetry, summary),
    RECORDED_SCHEMA,
    'run record',
  );
  const queued = yield* awaitTask(
    ctx.df.callActivityWithRetry(ACTIVITY.completeRequest, activityRetry, {
      modelName: request.modelName,
      requestId: input.request.requestId,
    }),
    NEXT_REQUEST_SCHEMA,
    'request completion',
  );
  setStep('done', { outcome, totalGrams: recorded.totalGrams });
  if (queued.next) {
    ctx.df.continueAsNew({ request: queued.next, timings, generation: input.generation + 1 });
    return undefined;
  }
  return { runId, outcome, detail, versionId: challengerVersionId, totalGrams: recorded.totalGrams };
};
