import path from 'node:path';
import { Readable } from 'node:stream';
import { loadSettings } from '../../../shared/config';
import { startAzurite, type RunningAzurite } from '../../../shared/storage/azurite';
import { composePipeline } from '../../../functions/composition';
import { LocalHost } from '../../../functions/local/localHost';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { LocalLauncher, defaultEntrypoints } from '../../../shared/containers/localLauncher';
import { generateWeek, weekStartDate, type GeneratorOptions } from '../../../shared/invoices/generator';
import { serializeCsv } from '../../../shared/invoices/serialize';
import { RecordingTelemetry } from '../../../shared/telemetry/telemetry';
import type { PipelineContext } from '../../../shared/pipeline/context';
import { retrainInstanceId } from '../../../shared/pipeline/contracts';
import { statusReport } from '../../../shared/pipeline/statusReport';
import { modelApiCredentials } from '../../../shared/modelApi/credentials';
import { collectServingLoad, replanServing } from '../../../shared/pipeline/servingUpkeep';
import { builtRepoRoot } from '../../support/builtRepo';

/**
 * The whole pipeline on real parts: Azurite storage, the real evaluator, poller and orchestrator
 * (through the durable-functions replay), and real local containers (the compiled training job and
 * model API as child processes). Only time is virtual.
 */
const root = builtRepoRoot();
const fixture = (name: string) => path.join(root, 'test/fixtures/containers', name);

// Week 0 ends just before the 2024-09-01 VAT change; week 1 is entirely after it: a big drop.
const generator: GeneratorOptions = {
  scenario: 'vat-reform',
  weeks: 2,
  rowsPerWeek: 1500,
  seed: 11,
  startDate: '2024-08-26',
};

// One storage account per test: batches accepted by one test must not join another's training window.
let azurite: RunningAzurite;
const launchers: LocalLauncher[] = [];
beforeEach(async () => {
  azurite = await startAzurite({ extentMemoryLimitMb: 256 });
});
afterEach(async () => {
  await Promise.all(launchers.splice(0).map((l) => l.close()));
  await azurite?.stop();
});

interface Harness {
  ctx: PipelineContext;
  host: LocalHost;
  clock: VirtualClock;
  launcher: LocalLauncher;
  telemetry: RecordingTelemetry;
}

async function harness(modelName: string, entrypoints?: Record<string, string>): Promise<Harness> {
  const settings = loadSettings({
    DataStorage: azurite.connectionString,
    MODEL_NAME: modelName,
    TASKHUB_NAME: `hub${modelName.replace(/[^a-z0-9]/gi, '')}`,
    CARBON_POLL_SCHEDULE: '0 0 * * * *',
    CONTAINER_POLL_SECONDS: '2',
    HEALTH_CHECK_INTERVAL_SECONDS: '1',
    HEALTH_CHECK_ATTEMPTS: '10',
    FOREST_TREES: '10',
  });
  const clock = new VirtualClock(new Date('2024-09-02T06:00:00Z'));
  const launcher = new LocalLauncher({
    entrypoints: { ...defaultEntrypoints(settings, root), ...entrypoints },
  });
  launchers.push(launcher);
  const telemetry = new RecordingTelemetry(clock.now);
  const ctx = await composePipeline(settings, { now: clock.now, launcher, telemetry, log: () => {} });
  const host = await LocalHost.create(ctx, clock);
  return { ctx, host, clock, launcher, telemetry };
}

async function upload(ctx: PipelineContext, week: number, name = `b-${weekStartDate(generator, week)}.csv`) {
  await ctx.invoices.upload(name, Readable.from(serializeCsv(generateWeek(generator, week))));
  return name;
}

async function settle(h: Harness, hours = 6): Promise<void> {
  const until = new Date(h.clock.now().getTime() + hours * 3_600_000);
  await h.host.runUntil(until, { realTimeStepMs: 100 });
}

async function predict(
  endpoint: string,
): Promise<{ modelVersion: string; predictions: { vatRatePercent: number }[] }> {
  const row = [...generateWeek(generator, 1)][0];
  const { vatRatePercent: _label, ...invoice } = row;
  const body = JSON.stringify({ invoices: [invoice] });
  // Every call but /health is authenticated: without the run's key the API refuses.
  const anonymous = await fetch(`${endpoint}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  expect(anonymous.status).toBe(401);
  const response = await fetch(`${endpoint}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...modelApiCredentials('local').headers },
    body,
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { modelVersion: string; predictions: { vatRatePercent: number }[] };
}

describe('end to end on Azurite with local containers', () => {
  jest.setTimeout(240_000);

  it('trains a first model, retrains after the VAT change, promotes it and serves it; nothing is left running', async () => {
    const h = await harness('e2e-main');
    await upload(h.ctx, 0);
    await settle(h);
    const first = await h.ctx.registry.getChampion('e2e-main');
    expect(first?.pointer.versionId).toBeDefined();
    const servingFirst = await h.ctx.serving.get('e2e-main');
    expect(servingFirst?.versionId).toBe(first?.pointer.versionId);
    expect((await predict(servingFirst!.endpoint!)).modelVersion).toBe(first?.pointer.versionId);
    // No load was ever seen: the switch planned the safe always-on configuration, and says why.
    expect(servingFirst?.plan).toMatchObject({
      kind: 'always-on-fallback',
      region: 'westeurope',
      reasons: ['load data unusable: no load history'],
    });
    // The API's own /metrics/load is stored per hour: one served call, one refused (401).
    expect(await collectServingLoad(h.ctx, 'e2e-main')).toMatchObject({
      kind: 'recorded',
      load: { requestsAdded: 1 },
    });
    // A day of observed load later, the daily re-plan moves serving to the planned configuration
    // through the same switch, retiring (and accounting) the fallback API; a second re-plan is a no-op.
    const nowMs = h.clock.now().getTime();
    const hours = Array.from({ length: 30 }, (_, i) => ({
      hourStartUtc: new Date(Math.floor(nowMs / 3_600_000) * 3_600_000 - (i + 1) * 3_600_000).toISOString(),
      requests: i % 3 === 0 ? 40 : 0,
      rowsPredicted: i % 3 === 0 ? 400 : 0,
      status4xx: 0,
      status5xx: 0,
      p50Ms: 3,
      p99Ms: 12,
    }));
    await h.ctx.servingLoad.record(
      'e2e-main',
      'earlier-api',
      { since: hours[29].hourStartUtc, coldStartMs: null, hours },
      { nowIso: h.clock.now().toISOString(), shiftMs: 0 },
    );
    const replanned = await replanServing(h.ctx, 'e2e-main');
    expect(replanned).toMatchObject({ kind: 'switched', from: servingFirst!.groupName });
    const planned = await h.ctx.serving.get('e2e-main');
    expect(planned?.plan).toMatchObject({
      kind: 'planned',
      host: 'local',
      scaling: { kind: 'scale-to-zero' },
    });
    expect(h.ctx.settings.ALLOWED_REGIONS).toContain(planned?.region);
    expect(planned?.versionId).toBe(first?.pointer.versionId);
    expect((await predict(planned!.endpoint!)).modelVersion).toBe(first?.pointer.versionId);
    expect(await replanServing(h.ctx, 'e2e-main')).toMatchObject({ kind: 'unchanged' });
    expect((await h.launcher.list()).map((g) => g.groupName)).toEqual([planned!.groupName]);
    const [fallbackPeriod] = await h.ctx.servingLoad.periods('e2e-main');
    expect(fallbackPeriod.serving).toMatchObject({
      plan: { kind: 'always-on-fallback' },
      replicaSource: 'always-on',
    });
    // Always on: a replica reserved for the whole period; its calls come from the stored load.
    expect(fallbackPeriod.serving?.replicaSeconds).toBeCloseTo(
      (Date.parse(fallbackPeriod.endedAt) - Date.parse(fallbackPeriod.startedAt)) / 1000,
      3,
    );
    expect(fallbackPeriod.serving?.requests).toBeGreaterThanOrEqual(1);

    await upload(h.ctx, 1);
    await settle(h);
    const evaluations = await h.ctx.evaluations.list('e2e-main');
    expect(evaluations.map((e) => e.decision.kind)).toEqual(['retrainNow', 'retrainNow']);
    expect(evaluations[1].decision.reason).toMatch(/drop/i);
    const second = await h.ctx.registry.getChampion('e2e-main');
    expect(second?.pointer.versionId).not.toBe(first?.pointer.versionId);
    const runs = await h.ctx.runRecords.listRuns('e2e-main');
    expect(runs.map((r) => r.outcome)).toEqual(['promoted', 'promoted']);
    expect(runs[1].challengerAccuracy!).toBeGreaterThan(runs[1].championAccuracy!);
    // Every stage has measured energy, an intensity from the trace and an SCI.
    const train = runs[1].stages.find((s) => s.stage === 'train')!;
    expect(train.resourceSource).toBe('local-process');
    expect(train.energy.energyKwh).toBeGreaterThan(0);
    expect(train.intensity.provider).toMatch(/trace/);
    expect(runs[1].totals.sciGramsPerUnit).toBeGreaterThan(0);

    const serving = await h.ctx.serving.get('e2e-main');
    expect(serving?.versionId).toBe(second?.pointer.versionId);
    const answer = await predict(serving!.endpoint!);
    expect(answer.modelVersion).toBe(second?.pointer.versionId);
    expect(answer.predictions[0].vatRatePercent).toBeGreaterThanOrEqual(0);
    // Only the serving API runs; the old API and both training jobs are gone.
    expect((await h.launcher.list()).map((g) => g.groupName)).toEqual([serving!.groupName]);
    expect((await h.host.runtime.getStatus(retrainInstanceId('e2e-main')))?.runtimeStatus).toBe('Completed');
    expect(h.telemetry.records.some((r) => r.name === 'pipeline.sci' && r.attributes.stage === 'train')).toBe(
      true,
    );
    // The upload's correlation id links its decision event to the retrain run it caused.
    const decision = h.telemetry.records.find(
      (r) => r.name === 'retrain.decision' && r.attributes.batch === 'b-2024-09-02.csv',
    );
    const run = h.telemetry.records.filter((r) => r.name === 'retrain.run').at(-1);
    expect(decision?.attributes.correlationId).toMatch(/^[0-9a-f]{16}$/);
    expect(run?.attributes.correlationId).toBe(decision?.attributes.correlationId);
    // What the status endpoint returns.
    const { models } = await statusReport(h.ctx);
    expect(models.map((m) => m.model)).toEqual(['e2e-main']);
    const [status] = models;
    expect(status.champion?.versionId).toBe(second?.pointer.versionId);
    expect(status.serving?.versionId).toBe(second?.pointer.versionId);
    expect(status.pending).toEqual([]);
    expect(status.lastDecisions.map((d) => d.decision.kind)).toEqual(['retrainNow', 'retrainNow']);
    expect(status.lastRuns).toHaveLength(2);
    expect(status.lastRuns[1].totalGrams).toBeGreaterThan(0);
    await h.launcher.delete(serving!.groupName);
    expect(await h.launcher.list()).toEqual([]);
  });

  it('a training container that keeps failing is retried, then fails with its reason, leaving nothing running', async () => {
    const h = await harness('e2e-trainfail', { 'green-e2e-ml/training:latest': fixture('exit3.mjs') });
    await upload(h.ctx, 0);
    await settle(h);
    expect(await h.ctx.registry.getChampion('e2e-trainfail')).toBeNull();
    const [run] = await h.ctx.runRecords.listRuns('e2e-trainfail');
    expect(run.outcome).toBe('failed');
    expect(run.detail).toMatch(/gave up after 3 containers: training container failed \(exit 3\)/);
    expect(await h.launcher.list()).toEqual([]);
  });

  it('a model API that fails its health check is removed, the champion rolled back, the old API kept', async () => {
    const h = await harness('e2e-apifail');
    await upload(h.ctx, 0);
    await settle(h);
    const first = await h.ctx.registry.getChampion('e2e-apifail');
    const oldServing = await h.ctx.serving.get('e2e-apifail');
    expect(oldServing).not.toBeNull();
    // From now on new model APIs crash at start.
    const broken = new LocalLauncher({
      entrypoints: {
        ...defaultEntrypoints(h.ctx.settings, root),
        'green-e2e-ml/model-api:latest': fixture('exit3.mjs'),
      },
    });
    launchers.push(broken);
    const swapped: PipelineContext = { ...h.ctx, launcher: mergeLaunchers(h.launcher, broken) };
    const host = await LocalHost.create(swapped, h.clock);
    await upload(swapped, 1);
    await host.runUntil(new Date(h.clock.now().getTime() + 6 * 3_600_000), { realTimeStepMs: 100 });
    const runs = await h.ctx.runRecords.listRuns('e2e-apifail');
    expect(runs.map((r) => r.outcome)).toEqual(['promoted', 'rollout-failed']);
    expect((await h.ctx.registry.getChampion('e2e-apifail'))?.pointer.versionId).toBe(
      first?.pointer.versionId,
    );
    expect((await h.ctx.serving.get('e2e-apifail'))?.groupName).toBe(oldServing?.groupName);
    expect((await predict(oldServing!.endpoint!)).modelVersion).toBe(first?.pointer.versionId);
    expect((await swapped.launcher.list()).map((g) => g.groupName)).toEqual([oldServing!.groupName]);
    await swapped.launcher.delete(oldServing!.groupName);
  });

  it('resumes an orchestration after the host process restarts mid-training', async () => {
    const h = await harness('e2e-restart');
    await upload(h.ctx, 0);
    // Run only until training has been launched, then "kill" the host (drop it).
    await h.host.runtime.runDue();
    await h.host.deliverBlobEvents();
    await h.host.runtime.runDue();
    expect((await h.host.runtime.getStatus(retrainInstanceId('e2e-restart')))?.customStatus).toMatchObject({
      step: 'training',
    });
    // A new host over the same storage picks the orchestration up from its stored history.
    const restarted = await LocalHost.create(h.ctx, h.clock);
    await restarted.runUntil(new Date(h.clock.now().getTime() + 6 * 3_600_000), { realTimeStepMs: 100 });
    const [run] = await h.ctx.runRecords.listRuns('e2e-restart');
    expect(run.outcome).toBe('promoted');
    const serving = await h.ctx.serving.get('e2e-restart');
    await h.launcher.delete(serving!.groupName);
    expect(await h.launcher.list()).toEqual([]);
  });
});

/** Routes new groups to `next` while still answering for groups the first launcher started. */
function mergeLaunchers(first: LocalLauncher, next: LocalLauncher): LocalLauncher {
  const owner = async (groupName: string) =>
    (await first.list()).some((g) => g.groupName === groupName) ? first : next;
  return new Proxy(next, {
    get(target, prop, receiver) {
      if (prop === 'list') {
        return async (filter?: { tags?: Record<string, string> }) => [
          ...(await first.list(filter)),
          ...(await next.list(filter)),
        ];
      }
      if (prop === 'status' || prop === 'logs' || prop === 'usage' || prop === 'delete') {
        return async (groupName: string, ...rest: unknown[]) => {
          const launcher = await owner(groupName);
          return (launcher[prop] as (g: string, ...r: unknown[]) => Promise<unknown>).call(
            launcher,
            groupName,
            ...rest,
          );
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
}
