import { retrainOrchestrator } from '../../../functions/orchestration/retrainOrchestrator';
import { ACTIVITY } from '../../../functions/orchestration/activityNames';
import { LocalDurableRuntime, type ActivityHandler } from '../../../functions/local/durableRuntime';
import { TableDurableStore } from '../../../functions/local/durableStore';
import type {
  OrchestrationInput,
  RunSummary,
  StageUsage,
  WindowPlan,
} from '../../../shared/pipeline/contracts';
import { testStorage, uniqueName } from '../../support/storage';

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

function scriptedActivities(script: Script, c: ReturnType<typeof clock>) {
  const live = new Set<string>();
  const calls: { name: string; input: unknown }[] = [];
  const recorded: RunSummary[] = [];
  let statePolls = 0;
  let planned = 0;
  const at = () => c.now().toISOString();
  const a: Record<string, ActivityHandler> = {
    [ACTIVITY.planRetrain]: (input) => {
      planned++;
      const req = (input as { request: { kind: string } }).request;
      return req.kind === 'retrainNow' ? { ...script.plan, kind: 'startNow', startAt: at() } : script.plan;
    },
    [ACTIVITY.launchTraining]: (input) => {
      const { runId } = input as { runId: string };
      live.add(`train-${runId}`);
      return {
        groupName: `train-${runId}`,
        dataWindow: ['b1', 'b2'],
        cpuCores: 2,
        memoryGb: 4,
        region: script.plan.region,
        launchedAt: at(),
      };
    },
    [ACTIVITY.containerStatus]: () => {
      const s = script.trainingStates[Math.min(statePolls++, script.trainingStates.length - 1)];
      if (s === 'failed') return { kind: 'failed', exitCode: 3, reason: 'exit 3' };
      if (s === 'succeeded') return { kind: 'succeeded', startedAt: T0, finishedAt: at(), exitCode: 0 };
      return s === 'running' ? { kind: s, startedAt: T0 } : { kind: s };
    },
    [ACTIVITY.collectContainerUsage]: (input) => {
      const i = input as { launchedAt: string; endedAt: string };
      return usage('train', i.launchedAt, i.endedAt);
    },
    [ACTIVITY.deleteContainer]: (input) => {
      const { groupName } = input as { groupName: string };
      return live.delete(groupName) ? 'deleted' : 'already-gone';
    },
    [ACTIVITY.compareChallenger]: (input) => {
      const { challengerVersionId } = input as { challengerVersionId: string };
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
    [ACTIVITY.promoteChallenger]: (input) => {
      const { versionId } = input as { versionId: string };
      return script.promotionConflict
        ? { kind: 'conflict', currentChampion: 'other' }
        : { kind: 'promoted', versionId };
    },
    [ACTIVITY.launchModelApi]: (input) => {
      const { runId } = input as { runId: string };
      live.add(`api-${runId}`);
      return {
        groupName: `api-${runId}`,
        dataWindow: [],
        cpuCores: 1,
        memoryGb: 1.5,
        region: 'westeurope',
        launchedAt: at(),
      };
    },
    [ACTIVITY.checkModelApiHealth]: () =>
      script.healthy === false
        ? { healthy: false, endpoint: null, servingVersion: null, detail: 'connection refused' }
        : { healthy: true, endpoint: 'http://127.0.0.1:9', servingVersion: 'x', detail: 'ok' },
    [ACTIVITY.switchServing]: () => ({
      previousGroup: 'api-old',
      previous: {
        groupName: 'api-old',
        endpoint: null,
        versionId: 'champ-1',
        region: 'westeurope',
        cpuCores: 1,
        memoryGb: 1.5,
        since: T0,
      },
    }),
    [ACTIVITY.retireModelApi]: () => null,
    [ACTIVITY.rollbackChampion]: () => ({ championVersionId: 'champ-1' }),
    [ACTIVITY.recordRun]: (input) => {
      recorded.push(input as RunSummary);
      return { runId: (input as RunSummary).runId, totalGrams: 1.5 };
    },
    [ACTIVITY.completeRequest]: () => {
      if (script.nextRequest) {
        script.nextRequest = false;
        return { next: { ...baseInput().request, requestId: 'req-2', kind: 'retrainNow', deadline: at() } };
      }
      return { next: null };
    },
  };
  const wrapped: Record<string, ActivityHandler> = {};
  for (const [name, fn] of Object.entries(a)) {
    wrapped[name] = (input, ctx) => {
      calls.push({ name, input });
      return fn(input, ctx);
    };
  }
  return { activities: wrapped, live, calls, recorded, planned: () => planned };
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
    expect(t.calls.some((c) => c.name === ACTIVITY.launchTraining)).toBe(false);
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
    const launch = t.calls.find((c) => c.name === ACTIVITY.launchTraining);
    expect(launch?.input).toMatchObject({ region: 'swedencentral' });
    const summary = t.recorded[0];
    expect(Date.parse(summary.stages[0].startedAt)).toBeGreaterThanOrEqual(
      Date.parse('2024-09-02T14:00:00Z'),
    );
    // training group deleted; the new API is serving (handed over), the old one retired
    expect([...t.live]).toEqual([`api-${summary.runId}`]);
    expect(t.calls.some((c) => c.name === ACTIVITY.retireModelApi)).toBe(true);
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
    const launch = t.calls.find((c) => c.name === ACTIVITY.launchTraining);
    expect(launch).toBeDefined();
    const summary = t.recorded[0];
    // deadline 2024-09-03T08:00 minus 30 min expected duration
    expect(summary.stages[0].startedAt).toBe('2024-09-03T07:30:00.000Z');
    expect(Date.parse(summary.stages[0].startedAt) + 30 * 60_000).toBeLessThanOrEqual(
      Date.parse(summary.request.deadline),
    );
    expect(summary.request.kind).toBe('retrainNow');
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
    expect(t.calls.some((c) => c.name === ACTIVITY.promoteChallenger)).toBe(false);
    expect(t.live.size).toBe(0);
  });

  it('cleans up when training fails', async () => {
    const t = await setup({
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['running', 'failed'],
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
    expect(t.calls.some((c) => c.name === ACTIVITY.compareChallenger)).toBe(false);
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
    expect(t.calls.filter((c) => c.name === ACTIVITY.checkModelApiHealth)).toHaveLength(3);
    expect(t.calls.some((c) => c.name === ACTIVITY.rollbackChampion)).toBe(true);
    expect(t.calls.some((c) => c.name === ACTIVITY.switchServing)).toBe(false);
    expect(t.live.size).toBe(0);
  });

  it('stops a training that runs past its timeout and deletes it', async () => {
    const t = await setup({
      plan: { ...greenPlan, kind: 'startNow', startAt: T0 },
      trainingStates: ['running'],
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
    expect(t.c.now().getTime() - Date.parse(T0)).toBeGreaterThanOrEqual(90 * 60_000);
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
    expect(t.calls.filter((c) => c.name === ACTIVITY.launchTraining)).toHaveLength(1);
  });
});
