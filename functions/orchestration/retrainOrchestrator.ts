import * as df from 'durable-functions';
import { describeError } from '../../shared/errors';
import { DEFAULT_RETRY_POLICY, retryDelayMs, type RetryPolicy } from '../../shared/errors/retryPolicy';
import { parseWith } from '../../shared/validation';
import { judgeTrainingEnd } from '../../shared/policy/trainingAttempt';
import {
  ORCHESTRATION_INPUT_SCHEMA,
  START_TRAINING_EVENT,
  START_TRAINING_EVENT_SCHEMA,
  type Comparison,
  type ContainerState,
  type OrchestrationInput,
  type OrchestrationTimings,
  type RetrainRequest,
  type RunOutcome,
  type RunSummary,
  type StageUsage,
  type WindowPlan,
} from '../../shared/pipeline/contracts';
import type { HealthReport, LaunchResult } from '../../shared/pipeline/activityContracts';
import { activityCaller, type ActivityCall } from './activityCalls';

/**
 * One singleton instance per model (instance id `retrain-<model>`), so two triggers never train
 * the same model at once. Steps: plan -> wait for the green window (or the deadline) -> train
 * (a killed or lost container is retried) -> compare challenger with champion on the same
 * held-out rows -> promote only if better -> roll out the model API (health-checked before the
 * old one goes) -> clean up -> record energy and SCI -> serve the next queued request, if any,
 * with continueAsNew.
 *
 * Every step is an idempotent activity whose result is in the history, so a host that dies
 * between any two steps resumes at the next one. Replay rules: no clock but currentUtcDateTime,
 * no I/O, no settings reads (timings come in the input), waiting only through durable timers and
 * external events.
 */
type Steps<T> = Generator<df.Task, T, unknown>;

/** Activities are short and idempotent: retried on transient failures, with backoff. */
const ACTIVITY_RETRY: RetryPolicy = DEFAULT_RETRY_POLICY;
/** A training container that was killed or lost gets a new container, a bounded number of times. */
export const TRAINING_RETRY: RetryPolicy = {
  maxAttempts: 3,
  firstDelayMs: 60_000,
  backoffCoefficient: 2,
  maxDelayMs: 600_000,
};
/** A model API that was lost while starting is launched again this many times in all. */
const MODEL_API_LAUNCHES = 3;

interface Run {
  readonly df: df.DurableOrchestrationContext;
  readonly call: ActivityCall;
  readonly timings: OrchestrationTimings;
  readonly runId: string;
  readonly versionId: string;
  readonly startedAt: string;
  request: RetrainRequest;
  readonly created: string[];
  readonly deleted: string[];
  servingHandOver: string | null;
  readonly stages: StageUsage[];
  comparison: Comparison | null;
  challengerVersionId: string | null;
}

interface Ending {
  outcome: RunOutcome;
  detail: string;
}

const now = (run: Run): Date => run.df.currentUtcDateTime;
const later = (run: Run, ms: number): Date => new Date(now(run).getTime() + ms);

function setStep(run: Run, step: string, extra: Record<string, unknown> = {}): void {
  run.df.setCustomStatus({
    step,
    runId: run.runId,
    requestId: run.request.requestId,
    kind: run.request.kind,
    ...extra,
  });
}

export const retrainOrchestrator: df.OrchestrationHandler = function* (
  context: df.OrchestrationContext,
): Steps<unknown> {
  const input: OrchestrationInput = parseWith(
    ORCHESTRATION_INPUT_SCHEMA,
    context.df.getInput(),
    'orchestration input',
  );
  const runId = context.df.newGuid(`${context.df.instanceId}:${input.generation}`);
  const startedAt = context.df.currentUtcDateTime;
  const run: Run = {
    df: context.df,
    call: activityCaller(context, ACTIVITY_RETRY),
    timings: input.timings,
    runId,
    versionId: `${startedAt.toISOString().slice(0, 16).replace(/[-:T]/g, '')}-${runId.slice(0, 8)}`,
    startedAt: startedAt.toISOString(),
    request: input.request,
    created: [],
    deleted: [],
    servingHandOver: null,
    stages: [],
    comparison: null,
    challengerVersionId: null,
  };

  const plan = yield* planAndWait(run);
  let ending: Ending;
  try {
    ending = yield* trainCompareAndRollOut(run, plan);
  } catch (error) {
    ending = { outcome: 'failed', detail: describeError(error) };
  }
  ending.detail += yield* cleanUp(run);
  return yield* recordAndContinue(run, input, plan, ending);
};

function* plan(run: Run, escalation: string | null): Steps<WindowPlan> {
  return yield* run.call('planRetrain', {
    request: run.request,
    nowIso: now(run).toISOString(),
    escalation,
  });
}

/** Plan, then wait for the green window: the poller signals it; the deadline is the backstop. */
function* planAndWait(run: Run): Steps<WindowPlan> {
  setStep(run, 'planning');
  let current = yield* plan(run, null);
  if (run.request.kind === 'retrainWhenGreen' && Date.parse(current.startAt) > now(run).getTime()) {
    const latestStart = new Date(
      Date.parse(run.request.deadline) - run.timings.expectedTrainingMinutes * 60_000,
    );
    setStep(run, 'waiting-for-green-window', { plan: current, latestStart: latestStart.toISOString() });
    const signal = run.df.waitForExternalEvent(START_TRAINING_EVENT);
    const backstop = run.df.createTimer(latestStart > now(run) ? latestStart : now(run));
    const winner: unknown = yield run.df.Task.any([signal, backstop]);
    if (winner === signal) {
      backstop.cancel();
      const event = parseWith(START_TRAINING_EVENT_SCHEMA, signal.result, 'startTraining event');
      if (event.reason === 'escalated' || event.plan === null) {
        run.request = { ...run.request, kind: 'retrainNow' };
        current = yield* plan(run, 'escalated');
      } else {
        current = event.plan;
      }
    } else {
      // The deadline backstop fired before any window opened: start now, best allowed region.
      const escalation = 'deadline reached';
      run.request = { ...run.request, kind: 'retrainNow', reason: `${run.request.reason}; ${escalation}` };
      current = yield* plan(run, escalation);
    }
  }
  if (Date.parse(current.startAt) > now(run).getTime()) {
    setStep(run, 'waiting-for-start', { plan: current });
    yield run.df.createTimer(new Date(current.startAt));
  }
  return current;
}

function* trainCompareAndRollOut(run: Run, windowPlan: WindowPlan): Steps<Ending> {
  const trained = yield* train(run, windowPlan);
  if (trained.kind === 'failed') return trained.ending;
  run.challengerVersionId = run.versionId;

  setStep(run, 'comparing', { plan: windowPlan, versionId: run.versionId });
  const comparison = yield* run.call('compareChallenger', {
    modelName: run.request.modelName,
    challengerVersionId: run.versionId,
    dataWindow: trained.launch.dataWindow,
  });
  run.comparison = comparison;
  run.stages.push(comparison.usage);
  if (comparison.verdict === 'reject') return { outcome: 'rejected-worse', detail: comparison.reason };

  setStep(run, 'promoting', { plan: windowPlan, versionId: run.versionId });
  const promotion = yield* run.call('promoteChallenger', {
    modelName: run.request.modelName,
    versionId: run.versionId,
    expectedChampion: comparison.championVersionId,
    reason: `${run.request.reason}; ${comparison.reason}`,
  });
  if (promotion.kind === 'conflict') {
    return {
      outcome: 'promotion-conflict',
      detail: `champion changed meanwhile (now ${promotion.currentChampion ?? 'none'}); not promoted`,
    };
  }
  setStep(run, 'rolling-out', { plan: windowPlan, versionId: run.versionId });
  return yield* rollOut(run);
}

type Training = { kind: 'succeeded'; launch: LaunchResult } | { kind: 'failed'; ending: Ending };

/** Train in a container; a killed or lost one is replaced under TRAINING_RETRY. */
function* train(run: Run, windowPlan: WindowPlan): Steps<Training> {
  let dataWindow: string[] | undefined;
  for (let attempt = 1; ; attempt++) {
    setStep(run, 'training', { plan: windowPlan, versionId: run.versionId, attempt });
    const launch = yield* run.call('launchTraining', {
      runId: run.runId,
      instanceId: run.df.instanceId,
      requestId: run.request.requestId,
      modelName: run.request.modelName,
      versionId: run.versionId,
      region: windowPlan.region,
      attempt,
      trainedAt: run.startedAt,
      decisionKind: run.request.kind,
      ...(dataWindow ? { dataWindow } : {}),
    });
    dataWindow = launch.dataWindow;
    if (!run.created.includes(launch.groupName)) run.created.push(launch.groupName);
    const state = yield* waitForContainer(run, launch.groupName);

    setStep(run, 'collecting-usage', { plan: windowPlan, versionId: run.versionId, attempt });
    run.stages.push(
      yield* run.call('collectContainerUsage', {
        groupName: launch.groupName,
        stage: 'train',
        region: launch.region,
        cpuCores: launch.cpuCores,
        memoryGb: launch.memoryGb,
        launchedAt: launch.launchedAt,
        endedAt: now(run).toISOString(),
      }),
    );
    yield* deleteGroup(run, launch.groupName);

    const end = judgeTrainingEnd(state, run.timings.trainingTimeoutMinutes);
    if (end.kind === 'succeeded') return { kind: 'succeeded', launch };
    if (!end.retryable) return { kind: 'failed', ending: { outcome: 'training-failed', detail: end.reason } };
    const delayMs = retryDelayMs(TRAINING_RETRY, attempt, { retryable: true, retryAfterMs: null });
    if (delayMs === null) {
      return {
        kind: 'failed',
        ending: { outcome: 'failed', detail: `training gave up after ${attempt} containers: ${end.reason}` },
      };
    }
    setStep(run, 'training-retry-wait', { attempt, reason: end.reason });
    yield run.df.createTimer(later(run, delayMs));
  }
}

/** Polls until the container ends or the training timeout passes (then returns its last state). */
function* waitForContainer(run: Run, groupName: string): Steps<ContainerState> {
  const deadline = later(run, run.timings.trainingTimeoutMinutes * 60_000);
  let state = yield* run.call('containerStatus', { groupName });
  while ((state.kind === 'pending' || state.kind === 'running') && now(run) < deadline) {
    yield run.df.createTimer(later(run, run.timings.containerPollSeconds * 1000));
    state = yield* run.call('containerStatus', { groupName });
  }
  return state;
}

function* deleteGroup(run: Run, groupName: string): Steps<void> {
  yield* run.call('deleteContainer', { groupName });
  if (!run.deleted.includes(groupName)) run.deleted.push(groupName);
}

/**
 * Start the new model API, wait until it answers with the new version, switch serving to it and
 * retire every API the switch replaced. An API lost while starting is launched again; one that
 * runs but never gets healthy means the promotion is undone and the old API keeps serving.
 */
function* rollOut(run: Run): Steps<Ending> {
  const modelName = run.request.modelName;
  // The plan is an activity result: a replay launches exactly the configuration planned first.
  const servingPlan = yield* run.call('planModelServing', {
    modelName,
    versionId: run.versionId,
    nowIso: now(run).toISOString(),
  });
  let health: HealthReport | null = null;
  let api: LaunchResult | null = null;
  for (let launch = 1; launch <= MODEL_API_LAUNCHES; launch++) {
    if (api) yield* deleteGroup(run, api.groupName);
    api = yield* run.call('launchModelApi', {
      runId: run.runId,
      instanceId: run.df.instanceId,
      modelName,
      versionId: run.versionId,
      plan: servingPlan,
    });
    if (!run.created.includes(api.groupName)) run.created.push(api.groupName);
    const relaunched = run.deleted.indexOf(api.groupName);
    if (relaunched >= 0) run.deleted.splice(relaunched, 1);
    health = yield* waitForHealth(run, api.groupName);
    if (health.healthy || !health.lost) break;
  }
  if (!api || !health?.healthy) {
    const detail = health?.detail ?? 'not checked';
    // The old API keeps serving; registry and serving must agree, so undo the promotion.
    const rolledBack = yield* run.call('rollbackChampion', {
      modelName,
      expectedChampion: run.versionId,
      reason: `model API for ${run.versionId} failed its health check: ${detail}`,
    });
    return {
      outcome: 'rollout-failed',
      detail:
        rolledBack.championVersionId === run.versionId
          ? `model API failed its health check (${detail}); no earlier champion to return to, so ${run.versionId} stays champion with no model API serving`
          : `model API failed its health check (${detail}); champion rolled back, old API kept serving`,
    };
  }
  const switched = yield* run.call('switchServing', {
    modelName,
    groupName: api.groupName,
    endpoint: health.endpoint,
    versionId: run.versionId,
    region: api.region,
    cpuCores: api.cpuCores,
    memoryGb: api.memoryGb,
    since: now(run).toISOString(),
    plan: servingPlan,
    // The certificate an ACI API serves: every later call to it pins exactly this one.
    ...(health.tls ? { tls: health.tls } : {}),
  });
  run.servingHandOver = api.groupName;
  for (const previous of switched.retiring) {
    setStep(run, 'retiring-old-api', { versionId: run.versionId, group: previous.groupName });
    const retired = yield* run.call('retireModelApi', {
      modelName,
      previous,
      endedAt: now(run).toISOString(),
    });
    if (retired) run.stages.push(retired);
  }
  return {
    outcome: 'promoted',
    detail: `${run.versionId} promoted and serving at ${health.endpoint ?? 'unknown endpoint'}`,
  };
}

function* waitForHealth(run: Run, groupName: string): Steps<HealthReport> {
  let health: HealthReport = {
    healthy: false,
    lost: false,
    endpoint: null,
    servingVersion: null,
    detail: 'not checked',
  };
  for (let attempt = 1; attempt <= run.timings.healthCheckAttempts; attempt++) {
    yield run.df.createTimer(later(run, run.timings.healthCheckIntervalSeconds * 1000));
    health = yield* run.call('checkModelApiHealth', { groupName, expectedVersionId: run.versionId });
    if (health.healthy || health.lost) break;
  }
  return health;
}

/** Every group this run created, except the API it handed over to serving. Returns detail text. */
function* cleanUp(run: Run): Steps<string> {
  setStep(run, 'cleaning-up');
  let detail = '';
  for (const groupName of run.created) {
    if (run.deleted.includes(groupName) || groupName === run.servingHandOver) continue;
    try {
      yield* deleteGroup(run, groupName);
    } catch (error) {
      // Recorded; the poller's orphan sweep deletes it later (it carries this run's tags).
      detail += `; could not delete ${groupName}: ${describeError(error)}`;
    }
  }
  return detail;
}

function* recordAndContinue(
  run: Run,
  input: OrchestrationInput,
  windowPlan: WindowPlan,
  ending: Ending,
): Steps<unknown> {
  const summary: RunSummary = {
    runId: run.runId,
    modelName: run.request.modelName,
    request: run.request,
    plan: windowPlan,
    outcome: ending.outcome,
    detail: ending.detail,
    challengerVersionId: run.challengerVersionId,
    comparison: run.comparison,
    stages: run.stages,
    containersCreated: run.created,
    containersDeleted: run.deleted,
    startedAt: run.startedAt,
    endedAt: now(run).toISOString(),
  };
  setStep(run, 'recording', { outcome: ending.outcome });
  const recorded = yield* run.call('recordRun', summary);
  const queued = yield* run.call('completeRequest', {
    modelName: run.request.modelName,
    requestId: input.request.requestId,
  });
  setStep(run, 'done', { outcome: ending.outcome, totalGrams: recorded.totalGrams });
  if (queued.next) {
    run.df.continueAsNew({ request: queued.next, timings: run.timings, generation: input.generation + 1 });
    return undefined;
  }
  return {
    runId: run.runId,
    outcome: ending.outcome,
    detail: ending.detail,
    versionId: run.challengerVersionId,
    totalGrams: recorded.totalGrams,
  };
}
