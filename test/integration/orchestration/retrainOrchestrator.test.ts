import { retrainOrchestrator } from '../../../functions/orchestration/retrainOrchestrator';
import { bindActivities, type ActivityImplementations } from '../../../functions/activities';
import { ACTIVITY_NAMES, type ActivityName } from '../../../shared/pipeline/activityContracts';
import { ProviderError, type GreenMlError } from '../../../shared/errors';
import { LocalDurableRuntime, type ActivityHandler } from '../../../functions/local/durableRuntime';
import { TableDurableStore } from '../../../functions/local/durableStore';
import type {
  OrchestrationInput,
  RunSummary,
  StageUsage,
  WindowPlan,
} from '../../../shared/pipeline/contracts';
import { testStorage, uniqueName } from '../../support/storage';
import type { ServingPlanRecord } from '../../../shared/serving/servingPlanRecord';

/**
 * The orchestrator driven through the real durable-functions replay (local runtime), with
 * scripted activities standing in for Azure: these tests pin the control flow (waiting, deadline,
 * promotion gate, cleanup), the end-to-end test exercises the real activities.
 */
const T0 = '2024-09-02T08:00:00.000Z';

function clock(startIso: string) {
  let nowMs = Date.parse(startIso);
  return { now: () => new Date(nowMs), advanceTo: (d: Date) => (nowMs = Math.max(nowMs, d.getTime())) };
}

interface Script {
  plan: WindowPlan;
  trainingStates: string[];
  challengerAccuracy: number;
  championAccuracy: number | null;
  promotionConflict?: boolean;
  healthy?: boolean;
  nextRequest?: boolean;
  /** Returns the error the promotion throws this time, or null to succeed. */
  promoteFailure?: () => GreenMlError | null;
}

function usage(stage: string, startedAt: string, endedAt: string): StageUsage {
  return {
    stage,
    region: 'swedencentral',
    startedAt,
    endedAt,
    cpuCores: 2,
    memoryGb: 4,
    cpuSeconds: 100,
    peakMemoryBytes: 1e8,
    resourceSource: 'local-process',
    functionalUnits: 1,
  };
}

type Scripted = ActivityImplementations<null>;

const servingPlan: ServingPlanRecord = {
  kind: 'planned',
  host: 'containerapps',
  region: 'swedencentral',
  rttMs: 24,
  size: { cpuCores: 0.5, memoryGb: 1 },
  servedTrees: 12,
  fullTrees: 50,
  servedAccuracy: 0.9,
  fullAccuracy: 0.901,
  scaling: { kind: 'scale-to-zero', minReplicas: 0, maxReplicas: 2, concurrentRequestsPerReplica: 3 },
  peakRowsPerSecond: 40,
  expectedP999Ms: 60,
  reasons: ['greenest eligible region'],
  plannedAt: T0,
};

function scriptedActivities(script: Script, c: ReturnType<typeof clock>) {
  const live = new Set<string>();
  const calls: { name: ActivityName; input: unknown; at: string }[] = [];
  const recorded: RunSummary[] = [];
  let statePolls = 0;
  let planned = 0;
  const at = () => c.now().toISOString();
  const a: Scripted = {
    planRetrain: (_ctx, input) => {
      planned++;
      return input.request.kind === 'retrainNow'
        ? { ...script.plan, kind: 'startNow', startAt: at() }
        : script.plan;
    },
    launchTraining: (_ctx, { runId, attempt }) => {
      const groupName = attempt === 1 ? `train-${runId}` : `train-${runId}-${attempt}`;
      live.add(groupName);
      return {
        groupName,
        dataWindow: ['b1', 'b2'],
        cpuCores: 2,
        memoryGb: 4,
        region: script.plan.region,
        launchedAt: at(),
      };
    },
    containerStatus: () => {
      const s = script.trainingStates[Math.min(statePolls++, script.trainingStates.length - 1)];
      if (s === 'bad-input') return { kind: 'failed', exitCode: 1, reason: 'exit 1' };
      if (s === 'killed') return { kind: 'failed', exitCode: null, reason: 'killed by SIGKILL' };
      if (s === 'missing') return { kind: 'missing' };
      if (s === 'succeeded') return { kind: 'succeeded', startedAt: T0, finishedAt: at(), exitCode: 0 };
      return s === 'running' ? { kind: s, startedAt: T0 } : { kind: 'pending' };
    },
    collectContainerUsage: (_ctx, i) => usage('train', i.launchedAt, i.endedAt),
    deleteContainer: (_ctx, { groupName }) => (live.delete(groupName) ? 'deleted' : 'already-gone'),
    compareChallenger: (_ctx, { challengerVersionId }) => {
      const better = script.championAccuracy === null || script.challengerAccuracy > script.championAccuracy;
      return {
        challengerVersionId,
        championVersionId: script.championAccuracy === null ? null : 'champ-1',
        challengerAccuracy: script.challengerAccuracy,
        championAccuracy: script.championAccuracy,
        holdoutRows: 1000,
        verdict: better ? 'promote' : 'reject',
        reason: better ? 'challenger better' : 'challenger not better',
        usage: usage('compare', at(), at()),
      };
    },
    promoteChallenger: (_ctx, { versionId }) => {
      const failure = script.promoteFailure?.();
      if (failure) throw failure;
      return script.promotionConflict
        ? { kind: 'conflict', currentChampion: 'other' }
        : { kind: 'promoted', versionId };
    },
    planModelServing: (_ctx, { nowIso }) => ({ ...servingPlan, plannedAt: nowIso }),
    launchModelApi: (_ctx, { runId, plan }) => {
      live.add(`api-${runId}`);
      return {
        groupName: `api-${runId}`,
        dataWindow: [],
        cpuCores: plan.size.cpuCores,
        memoryGb: plan.size.memoryGb,
        region: plan.region,
        launchedAt: at(),
      };
    },
    checkModelApiHealth: () =>
      script.healthy === false
        ? { healthy: false, lost: false, endpoint: null, servingVersion: null, detail: 'connection refused' }
        : { healthy: true, lost: false, endpoint: 'http://127.0.0.1:9', servingVersion: 'x', detail: 'ok' },
    switchServing: () => ({
      retiring: [
        {
          groupName: 'api-old',
          endpoint: null,
          versionId: 'champ-1',
          region: 'westeurope',
          cpuCores: 1,
          memoryGb: 1.5,
          since: T0,
          plan: null,
        },
      ],
    }),
    retireModelApi: () => null,
    rollbackChampion: () => ({ championVersionId: 'champ-1' }),
    recordRun: (_ctx, summary) => {
      recorded.push(summary);
      return { runId: summary.runId, totalGrams: 1.5 };
    },
    completeRequest: () => {
      if (script.nextRequest) {
        script.nextRequest = false;
        return { next: { ...baseInput().request, requestId: 'req-2', kind: 'retrainNow', deadline: at() } };
      }
      return { next: null };
    },
  };
  const handlers = bindActivities(async () => null, a);
  const activities: Record<string, ActivityHandler> = {};
  for (const name of ACTIVITY_NAMES) {
    activities[name] = (input, ctx) => {
      calls.push({ name, input, at: at() });
      return handlers[name](input, ctx);
    };
  }
  return { activities, live, calls, recorded, planned: () => planned };
}

function baseInput(over: Partial<OrchestrationInput['request']> = {}): OrchestrationInput {
  return {
    request: {
      requestId: 'req-1',
      modelName: 'vat-rate',
      kind: 'retrainWhenGreen',
      reason: 'accuracy dropped 3 %',
      requestedAt: T0,
      deadline: '2024-09-03T08:00:00.000Z',
      triggeringBatch: 'invoices-2024-09-02.csv',
      relativeDrop: 0.03,
      ...over,
    },
    timings: {
      containerPollSeconds: 60,
      trainingTimeoutMinutes: 90,
      expectedTrainingMinutes: 30,
      healthCheckAttempts: 3,
      healthCheckIntervalSeconds: 10,
    },
    generation: 0,
  };
}

const greenPlan: WindowPlan = {
  kind: 'window',
  region: 'swedencentral',
  startAt: '2024-09-02T14:00:00.000Z',
  expectedGramsPerKwh: 21,
  reason: 'lowest forecast window',
  forecastQuality: 'realistic-simulated',
  baselineGramsPerKwh: 300,
};

async function setup(script: Script, startIso = T0) {
  const c = clock(startIso);
  const storage = testStorage();
  const store = await TableDurableStore.create(storage.tables, storage.table, uniqueName('orch'));
  const s = scriptedActivities(script, c);
  const runtime = new LocalDurableRuntime({
    store,
    now: c.now,
    orchestrations: { retrainOrchestrator },
    activities: s.activities,
  });
  const drain = async (until?: Date) => {
    for (let i = 0; i < 2000; i++) {
      await runtime.runDue();
      const next = await runtime.nextDueAt();
      if (!next || (until && next > until)) return;
      c.advanceTo(next);
    }
    throw new Error('did not settle');
  };
  return { c, runtime, store, drain, ...s };
}

describe('retrainOrchestrator', () => {
  it('waits for the signalled green window, trains, promotes, rolls out and cleans up', async () => {
    const t = await setup({
      plan: greenPlan,
      trainingStates: ['pending', 'running', 'running', 'succeeded'],
      challengerAccuracy: 0.93,
      championAccuracy: 0.9,
    });
    await t.runtime.startNew('retrainOrchestrator', { instanceId: 'retrain-vat-rate', input: baseInput() });
    await t.drain(new Date('2024-09-02T12:00:00Z'));
    const waiting = await t.runtime.getStatus('retrain-vat-rate');
    expect(waiting?.customStatus).toMatchObject({ step: 'waiting-for-green-window' });
    expect(t.calls.some((c) => c.name === 'launchTraining')).toBe(false);
    // The poller signals at 13:50 that the window opens at 14:00.
    t.c.advanceTo(new Date('2024-09-02T13:50:00Z'));
    await t.runtime.raiseEvent('retrain-vat-rate', 'startTraining', {
      reason: 'window-open',
      plan: greenPlan,
    });
    await t.drain();
    const done = await t.runtime.getStatus('retrain-vat-rate');
    expect(done?.runtimeStatus).toBe('Completed');
    expect(done?.output).toMatchObject({ outcome: 'promoted' });
    const launch = t.calls.find((c) => c.name === 'launchTraining');
    expect(launch?.input).toMatchObject({ region: 'swedencentral' });
    const summary = t.recorded[0];
    expect(Date.parse(summary.stages[0].startedAt)).toBeGreaterThanOrEqual(
      Date.parse('2024-09-02T14:00:00Z'),
    );
    // training group deleted; the new API is serving (handed over), the old one retired
    expect([...t.live]).toEqual([`api-${summary.runId}`]);
    expect(t.calls.some((c) => c.name === 'retireModelApi')).toBe(true);
    // The API is launched and recorded exactly as planned, the plan made once, after promotion.
    const names = t.calls.map((c) => c.name);
    expect(names.filter((n) => n === 'planModelServing')).toHaveLength(1);
    expect(names.indexOf('planModelServing')).toBeGreaterThan(names.indexOf('promoteChallenger'));
    expect(t.calls.find((c) => c.name === 'launchModelApi')?.input).toMatchObject({
      plan: { region: 'swedencentral', size: { cpuCores: 0.5 }, servedTrees: 12 },
    });
    expect(t.calls.find((c) => c.name === 'switchServing')?.input).toMatchObject({
      region: 'swedencentral',
      cpuCores: 0.5,
      memoryGb: 1,
      plan: { servedTrees: 12, scaling: { kind: 'scale-to-zero' } },
    });
  });

  it('starts by the deadline when no window is signalled', async () => {
    const t = await setup({
      plan: greenPlan,
      trainingStates: ['succeeded'],
      challengerAccuracy: 0.93,
      championAccuracy: 0.9,
    });
    await t.runtime.startNew('retrainOrchestrator', { instanceId: 'retrain-vat-rate', input: baseInput() });
    await t.drain();
    const launch = t.calls.find((c) => c.name === 'launchTraining');
    expect(launch).toBeDefined();
    const summary = t.recorded[0];
    // deadline 2024-09-03T08:00 minus 30 min expected duration
    expect(summary.stages[0].startedAt).toBe('2024-09-03T07:30:00.000Z');
    expect(Date.parse(summary.stages[0].startedAt) + 30 * 60_000).toBeLessThanOrEqual(
      Date.parse(summary.request.deadline),
    );
    expect(summary.request.kind).toBe('retrainNow');
    // The request's owner (the pending table, through planRetrain) is told about the escalation.
    const plans = t.calls.filter((c) => c.name === 'planRetrain').map((c) => c.input);
    expect(plans).toMatchObject([{ escalation: null }, { escalation: 'deadline reached' }]);
  });

  it('never promotes a challenger that is not better, and deletes the training container', async () => {
    const t = await setup({
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['running', 'succeeded'],
      challengerAccuracy: 0.88,
      championAccuracy: 0.9,
    });
    await t.runtime.startNew('retrainOrchestrator', {
      instanceId: 'retrain-vat-rate',
      input: baseInput({ kind: 'retrainNow' }),
    });
    await t.drain();
    expect((await t.runtime.getStatus('retrain-vat-rate'))?.output).toMatchObject({
      outcome: 'rejected-worse',
    });
    expect(t.calls.some((c) => c.name === 'promoteChallenger')).toBe(false);
    expect(t.live.size).toBe(0);
  });

  it('does not retry a training that rejected its input, and cleans up', async () => {
    const t = await setup({
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['running', 'bad-input'],
      challengerAccuracy: 0.95,
      championAccuracy: 0.9,
    });
    await t.runtime.startNew('retrainOrchestrator', {
      instanceId: 'retrain-vat-rate',
      input: baseInput({ kind: 'retrainNow' }),
    });
    await t.drain();
    expect((await t.runtime.getStatus('retrain-vat-rate'))?.output).toMatchObject({
      outcome: 'training-failed',
    });
    expect(t.live.size).toBe(0);
    expect(t.calls.some((c) => c.name === 'compareChallenger')).toBe(false);
    expect(t.calls.filter((c) => c.name === 'launchTraining')).toHaveLength(1);
  });

  it('replaces a killed training container and promotes from the second one', async () => {
    const t = await setup({
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['running', 'killed', 'running', 'succeeded'],
      challengerAccuracy: 0.95,
      championAccuracy: 0.9,
    });
    await t.runtime.startNew('retrainOrchestrator', {
      instanceId: 'retrain-vat-rate',
      input: baseInput({ kind: 'retrainNow' }),
    });
    await t.drain();
    expect((await t.runtime.getStatus('retrain-vat-rate'))?.output).toMatchObject({ outcome: 'promoted' });
    const launches = t.calls.filter((c) => c.name === 'launchTraining').map((c) => c.input);
    expect(launches).toMatchObject([{ attempt: 1 }, { attempt: 2 }]);
    // The relaunch trains on the first attempt's window and keeps the run's start as trainedAt, so
    // it builds the very model the lost container would have (batches accepted meanwhile wait).
    expect(launches[0]).not.toHaveProperty('dataWindow');
    expect(launches[1]).toMatchObject({ dataWindow: ['b1', 'b2'], trainedAt: T0 });
    expect(launches[0]).toMatchObject({ trainedAt: T0 });
    // Both training groups deleted; only the new API is left (serving).
    expect([...t.live]).toEqual([`api-${t.recorded[0].runId}`]);
    expect(t.recorded[0].stages.filter((st) => st.stage === 'train')).toHaveLength(2);
  });

  it('gives up on a training container that keeps getting lost with a clear failed outcome', async () => {
    const t = await setup({
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['missing'],
      challengerAccuracy: 0.95,
      championAccuracy: 0.9,
    });
    await t.runtime.startNew('retrainOrchestrator', {
      instanceId: 'retrain-vat-rate',
      input: baseInput({ kind: 'retrainNow' }),
    });
    await t.drain();
    const output = (await t.runtime.getStatus('retrain-vat-rate'))?.output;
    expect(output).toMatchObject({ outcome: 'failed' });
    expect((output as { detail: string }).detail).toMatch(
      /gave up after 3 containers: training container lost/,
    );
    expect(t.calls.filter((c) => c.name === 'launchTraining')).toHaveLength(3);
    expect(t.live.size).toBe(0);
  });

  it('does not retry an activity that failed with 403', async () => {
    const t = await setup({
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['succeeded'],
      challengerAccuracy: 0.95,
      championAccuracy: 0.9,
      promoteFailure: () =>
        new ProviderError('PROVIDER_UNAUTHORIZED', 'registry refused the identity', 'blob-storage', {
          statusCode: 403,
        }),
    });
    await t.runtime.startNew('retrainOrchestrator', {
      instanceId: 'retrain-vat-rate',
      input: baseInput({ kind: 'retrainNow' }),
    });
    await t.drain();
    const output = (await t.runtime.getStatus('retrain-vat-rate'))?.output as {
      outcome: string;
      detail: string;
    };
    expect(output.outcome).toBe('failed');
    expect(output.detail).toMatch(/promoteChallenger failed after 1 attempt \[PROVIDER_UNAUTHORIZED\]/);
    expect(t.calls.filter((c) => c.name === 'promoteChallenger')).toHaveLength(1);
  });

  it('waits out a 429 for as long as its Retry-After says, then succeeds', async () => {
    let throttled = 2;
    const t = await setup({
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['succeeded'],
      challengerAccuracy: 0.95,
      championAccuracy: 0.9,
      promoteFailure: () => {
        if (throttled-- <= 0) return null;
        return new ProviderError('PROVIDER_HTTP', 'throttled', 'blob-storage', {
          statusCode: 429,
          retryable: true,
          details: { retryAfterSeconds: 600 },
        });
      },
    });
    await t.runtime.startNew('retrainOrchestrator', {
      instanceId: 'retrain-vat-rate',
      input: baseInput({ kind: 'retrainNow' }),
    });
    await t.drain();
    expect((await t.runtime.getStatus('retrain-vat-rate'))?.output).toMatchObject({ outcome: 'promoted' });
    const tries = t.calls.filter((c) => c.name === 'promoteChallenger').map((c) => Date.parse(c.at));
    expect(tries).toHaveLength(3);
    // The fixed 5 s backoff would have retried after 5 s and 10 s; the server asked for 600 s.
    expect(tries[1] - tries[0]).toBeGreaterThanOrEqual(600_000);
    expect(tries[2] - tries[1]).toBeGreaterThanOrEqual(600_000);
  });

  it('keeps the old API and rolls the champion back when the new API is unhealthy', async () => {
    const t = await setup({
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['succeeded'],
      challengerAccuracy: 0.95,
      championAccuracy: 0.9,
      healthy: false,
    });
    await t.runtime.startNew('retrainOrchestrator', {
      instanceId: 'retrain-vat-rate',
      input: baseInput({ kind: 'retrainNow' }),
    });
    await t.drain();
    expect((await t.runtime.getStatus('retrain-vat-rate'))?.output).toMatchObject({
      outcome: 'rollout-failed',
    });
    expect(t.calls.filter((c) => c.name === 'checkModelApiHealth')).toHaveLength(3);
    expect(t.calls.some((c) => c.name === 'rollbackChampion')).toBe(true);
    expect(t.calls.some((c) => c.name === 'switchServing')).toBe(false);
    expect(t.live.size).toBe(0);
  });

  it('stops a training that runs past its timeout and deletes it', async () => {
    const t = await setup({
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['running'],
      challengerAccuracy: 0.95,
      championAccuracy: 0.9,
    });
    // Polled every 15 min (not every minute): the same 90-minute timeout in six polls, so the
    // replayed history stays short and the test does not depend on how loaded the machine is.
    const input = baseInput({ kind: 'retrainNow' });
    const pollSeconds = 15 * 60;
    await t.runtime.startNew('retrainOrchestrator', {
      instanceId: 'retrain-vat-rate',
      input: { ...input, timings: { ...input.timings, containerPollSeconds: pollSeconds } },
    });
    await t.drain();
    expect((await t.runtime.getStatus('retrain-vat-rate'))?.output).toMatchObject({
      outcome: 'training-failed',
    });
    expect(t.live.size).toBe(0);
    // Stopped at the first poll past the timeout: not before it, and not a poll later.
    const elapsedMs = t.c.now().getTime() - Date.parse(T0);
    expect(elapsedMs).toBeGreaterThanOrEqual(90 * 60_000);
    expect(elapsedMs).toBeLessThanOrEqual(90 * 60_000 + pollSeconds * 1000);
  });

  it('serves a request queued during the run with continueAsNew', async () => {
    const t = await setup({
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['succeeded'],
      challengerAccuracy: 0.95,
      championAccuracy: 0.9,
      nextRequest: true,
    });
    await t.runtime.startNew('retrainOrchestrator', {
      instanceId: 'retrain-vat-rate',
      input: baseInput({ kind: 'retrainNow' }),
    });
    await t.drain();
    expect(t.recorded.map((r) => r.request.requestId)).toEqual(['req-1', 'req-2']);
    expect((await t.runtime.getStatus('retrain-vat-rate'))?.runtimeStatus).toBe('Completed');
  });

  it('resumes after the process is killed mid-orchestration', async () => {
    const script: Script = {
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['running', 'running', 'running', 'succeeded'],
      challengerAccuracy: 0.95,
      championAccuracy: 0.9,
    };
    const t = await setup(script);
    await t.runtime.startNew('retrainOrchestrator', {
      instanceId: 'retrain-vat-rate',
      input: baseInput({ kind: 'retrainNow' }),
    });
    await t.drain(new Date(Date.parse(T0) + 90_000)); // in the middle of polling training
    expect((await t.runtime.getStatus('retrain-vat-rate'))?.customStatus).toMatchObject({ step: 'training' });
    // A new runtime over the same store = a restarted process.
    const resumed = new LocalDurableRuntime({
      store: t.store,
      now: t.c.now,
      orchestrations: { retrainOrchestrator },
      activities: t.activities,
    });
    for (let i = 0; i < 500; i++) {
      await resumed.runDue();
      const next = await resumed.nextDueAt();
      if (!next) break;
      t.c.advanceTo(next);
    }
    expect((await resumed.getStatus('retrain-vat-rate'))?.output).toMatchObject({ outcome: 'promoted' });
    expect(t.calls.filter((c) => c.name === 'launchTraining')).toHaveLength(1);
  });
});
