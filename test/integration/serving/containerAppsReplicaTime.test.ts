import { loadSettings } from '../../../shared/config';
import { composePipeline } from '../../../functions/composition';
import { LocalLauncher } from '../../../shared/containers/localLauncher';
import type { PipelineContext } from '../../../shared/pipeline/context';
import type { ServingRecord } from '../../../shared/pipeline/servingState';
import { replicaReaderFor, servingPeriodStage } from '../../../shared/pipeline/servingActivities';
import { collectServingLoad } from '../../../shared/pipeline/servingUpkeep';
import { azureMonitorReplicaReader, type AppReplicaReader } from '../../../shared/sci/azureMonitorMetrics';
import type { ServingPlanRecord } from '../../../shared/serving/servingPlanRecord';
import {
  fixedTokenCredential,
  startFakeAzureMonitor,
  type FakeAzureMonitor,
  type FakePoint,
} from '../../support/fakeAzureMonitor';
import { uniqueName } from '../../support/storage';

/**
 * The serve stage of a model API on Container Apps takes its reserved time from Azure Monitor's
 * `Replicas` metric (Σ per-minute maximum × seconds), read through the real metrics SDK from a
 * loopback batch endpoint, with the load on Azurite. Without complete metrics it falls back to the
 * load-hours estimate and records why.
 */
const SUB = '00000000-0000-4000-8000-00000000a1a1';
const RG = 'rg-green';
const SINCE = '2024-09-03T10:00:00.000Z';
const ENDED = '2024-09-03T13:00:00.000Z';
const MINUTES = 180;
const appId = (name: string): string =>
  `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.App/containerApps/${name}`;
const minute = (i: number): string =>
  new Date(Date.parse(SINCE) + i * 60_000).toISOString().replace('.000Z', 'Z');

const PLAN: ServingPlanRecord = {
  kind: 'planned',
  host: 'containerapps',
  region: 'swedencentral',
  rttMs: 12,
  size: { cpuCores: 0.5, memoryGb: 1 },
  servedTrees: null,
  fullTrees: null,
  servedAccuracy: null,
  fullAccuracy: null,
  scaling: { kind: 'scale-to-zero', minReplicas: 0, maxReplicas: 3, concurrentRequestsPerReplica: 4 },
  peakRowsPerSecond: null,
  expectedP999Ms: null,
  reasons: ['test'],
  plannedAt: SINCE,
};

function record(groupName: string): ServingRecord {
  return {
    groupName,
    endpoint: null,
    versionId: 'v1',
    region: 'swedencentral',
    cpuCores: 0.5,
    memoryGb: 1,
    since: SINCE,
    plan: PLAN,
  };
}

/** Replica counts per minute of the period (undefined = the minute is absent from the answer). */
function replicas(count: (i: number) => number | undefined): FakePoint[][] {
  const points: FakePoint[] = [];
  for (let i = 0; i < MINUTES; i++) {
    const c = count(i);
    if (c !== undefined) points.push({ timeStamp: minute(i), maximum: c, average: c });
  }
  return [points];
}

let fake: FakeAzureMonitor;
let reader: AppReplicaReader;
let ctx: PipelineContext;
let model: string;

beforeAll(async () => {
  fake = await startFakeAzureMonitor({ subscriptionId: SUB });
  reader = azureMonitorReplicaReader(
    { AZURE_SUBSCRIPTION_ID: SUB, ACI_RESOURCE_GROUP: RG, METRICS_ENDPOINT: fake.endpoint },
    { credential: fixedTokenCredential(), trustedCaPem: fake.caPem, maxRetries: 2, retryDelayMs: 1 },
  );
  const connectionString = process.env.AZURITE_TEST_CONNECTION_STRING;
  if (!connectionString) throw new Error('Azurite was not started');
  model = uniqueName('replicas');
  ctx = await composePipeline(loadSettings({ DataStorage: connectionString, MODEL_NAME: model }), {
    now: () => new Date(ENDED),
    launcher: new LocalLauncher({ entrypoints: {} }),
    log: () => {},
  });
  // The API reported one busy hour (10:00) on /metrics/load: the load-hours estimate is 3600 s.
  await ctx.servingLoad.record(
    model,
    'api-reported',
    {
      since: SINCE,
      coldStartMs: 1500,
      hours: [
        {
          hourStartUtc: SINCE,
          requests: 300,
          rowsPredicted: 6000,
          status4xx: 0,
          status5xx: 0,
          p50Ms: 4,
          p99Ms: 20,
        },
      ],
    },
    { nowIso: ENDED, shiftMs: 0 },
  );
});
afterAll(async () => {
  await fake.close();
});

const stageOf = async (groupName: string) =>
  servingPeriodStage(ctx, model, record(groupName), ENDED, null, 0, reader);

describe('serve stage replica time on Container Apps from Azure Monitor', () => {
  it('sums the per-minute maximum replica count: two replicas count twice, zero replicas nothing', async () => {
    fake.setMetrics(appId('api-busy'), {
      Replicas: replicas((i) => (i < 30 ? 1 : i < 35 ? 2 : 0)),
      Requests: [Array.from({ length: 35 }, (_, i) => ({ timeStamp: minute(i), total: 10 }))],
    });
    const stage = await stageOf('api-busy');
    expect(stage.serving).toMatchObject({
      replicaSource: 'azure-monitor',
      replicaSeconds: 30 * 60 + 5 * 2 * 60,
      // Ingress saw 350 requests, more than the 300 the API reported: the larger count is kept.
      requests: 350,
      predictions: 6000,
    });
    expect(stage.serving?.replicaFallbackReason).toBeUndefined();
    const request = fake.requests.at(-1)!;
    expect(request.path).toBe(`/subscriptions/${SUB}/metrics:getBatch`);
    expect(request.query.get('metricnamespace')).toBe('Microsoft.App/containerApps');
    expect(request.query.get('metricnames')).toBe('Replicas,Requests');
    expect(request.query.get('aggregation')).toBe('Maximum,Total');
    expect(request.query.get('interval')).toBe('PT1M');
    expect(request.query.get('starttime')).toBe('2024-09-03T10:00:00.000Z');
    expect(request.query.get('endtime')).toBe('2024-09-03T13:00:00.000Z');
    expect(JSON.parse(request.body)).toEqual({ resourceids: [appId('api-busy')] });
  });

  it('an app at zero replicas the whole period reserved 0 replica-seconds (measured, not estimated)', async () => {
    fake.setMetrics(appId('api-idle'), { Replicas: replicas(() => 0) });
    const stage = await stageOf('api-idle');
    expect(stage.serving).toMatchObject({ replicaSource: 'azure-monitor', replicaSeconds: 0, requests: 300 });
  });

  it('minutes without data fall back to the load-hours estimate, with the reason', async () => {
    fake.setMetrics(appId('api-gap'), { Replicas: replicas((i) => (i >= 60 && i < 70 ? undefined : 1)) });
    const stage = await stageOf('api-gap');
    expect(stage.serving).toMatchObject({
      replicaSource: 'load-hours',
      replicaSeconds: 3600,
      replicaFallbackReason: 'Azure Monitor Replicas has 10 of 180 minutes without data',
    });
  });

  it('a failed query falls back to the load-hours estimate, with the error as the reason', async () => {
    fake.setMetrics(appId('api-fail'), { Replicas: replicas(() => 1) });
    fake.inject({ status: 400, body: { error: { code: 'BadRequest', message: 'bad filter' } } });
    const stage = await stageOf('api-fail');
    expect(stage.serving).toMatchObject({ replicaSource: 'load-hours', replicaSeconds: 3600 });
    expect(stage.serving?.replicaFallbackReason).toMatch(/^Azure Monitor Replicas query failed: .*400/);
  });

  it('a throttled query (429 with retry-after) is retried and measured', async () => {
    fake.setMetrics(appId('api-throttled'), { Replicas: replicas((i) => (i < 10 ? 1 : 0)) });
    const before = fake.requests.length;
    fake.inject({
      status: 429,
      headers: { 'retry-after-ms': '1' },
      body: { error: { code: 'TooManyRequests', message: 'throttled' } },
    });
    const stage = await stageOf('api-throttled');
    expect(stage.serving).toMatchObject({ replicaSource: 'azure-monitor', replicaSeconds: 600 });
    expect(fake.requests.slice(before).map((r) => r.status)).toEqual([429, 200]);
  });

  it('a period of several days is read a day per request and summed', async () => {
    const days = 2.5;
    const points = Array.from({ length: days * 1440 }, (_, i) => ({ timeStamp: minute(i), maximum: i % 2 }));
    fake.setMetrics(appId('api-long'), { Replicas: [points] });
    const before = fake.requests.length;
    const m = await reader({
      appName: 'api-long',
      region: 'swedencentral',
      startedAt: SINCE,
      endedAt: new Date(Date.parse(SINCE) + days * 86_400_000).toISOString(),
    });
    expect(m).toMatchObject({
      minutes: days * 1440,
      minutesWithData: days * 1440,
      replicaSeconds: (days * 1440 * 60) / 2,
    });
    expect(fake.requests.slice(before).map((r) => r.query.get('endtime'))).toEqual([
      '2024-09-04T10:00:00.000Z',
      '2024-09-05T10:00:00.000Z',
      '2024-09-05T22:00:00.000Z',
    ]);
  });

  it('only Container Apps have a replica reader', () => {
    expect(replicaReaderFor(ctx)).toBeUndefined();
  });
});

describe('load collection on Container Apps', () => {
  /** Serves `groupName` for a model of its own, and counts the calls that would reach the app. */
  async function collect(groupName: string): Promise<{ kind: string; calls: string[] }> {
    const modelName = `${model}-${groupName}`;
    await ctx.serving.switchTo(modelName, {
      ...record(groupName),
      endpoint: `https://${groupName}.example.invalid`,
    });
    const calls: string[] = [];
    const fetchImpl = (async (url: string | URL | Request) => {
      calls.push(String(url));
      return new Response('{}', { status: 503 });
    }) as typeof fetch;
    const collection = await collectServingLoad(ctx, modelName, fetchImpl, reader);
    return { kind: collection.kind, calls };
  }

  it('does not wake an app that Azure Monitor shows at zero replicas: the hour is recorded idle', async () => {
    fake.setMetrics(appId('api-asleep'), { Replicas: replicas(() => 0) });
    const { kind, calls } = await collect('api-asleep');
    expect(kind).toBe('idle');
    expect(calls).toEqual([]);
  });

  it('reads /metrics/load from an app with a replica running', async () => {
    fake.setMetrics(appId('api-awake'), { Replicas: replicas((i) => (i >= MINUTES - 10 ? 1 : 0)) });
    const { kind, calls } = await collect('api-awake');
    expect(calls).toEqual(['https://api-awake.example.invalid/metrics/load']);
    // The test app answers 503: not recorded, so the load goes stale rather than wrong.
    expect(kind).toBe('failed');
  });

  it('keeps the requests Azure Monitor counted at ingress per hour, which a replica at zero can no longer report', async () => {
    // 10:00–11:00 ingress saw 500 requests (the API itself reported 300 of them before it scaled
    // to zero); 11:00–12:00 saw 40 it never reported; 12:00–13:00 has no Requests data at all.
    const requests = [500, 40].flatMap((total, hour) =>
      Array.from({ length: 60 }, (_, i) => ({
        timeStamp: minute(hour * 60 + i),
        total: i === 0 ? total : 0,
      })),
    );
    fake.setMetrics(appId('api-counted'), { Replicas: replicas(() => 0), Requests: [requests] });
    const modelName = `${model}-api-counted`;
    await ctx.servingLoad.record(
      modelName,
      'api-reported',
      {
        since: SINCE,
        coldStartMs: null,
        hours: [
          {
            hourStartUtc: SINCE,
            requests: 300,
            rowsPredicted: 6000,
            status4xx: 0,
            status5xx: 0,
            p50Ms: 4,
            p99Ms: 20,
          },
        ],
      },
      { nowIso: minute(30), shiftMs: 0 },
    );
    const { kind, calls } = await collect('api-counted');
    expect(kind).toBe('idle');
    expect(calls).toEqual([]);
    const history = await ctx.servingLoad.history(modelName);
    expect(history.slice(0, 3)).toEqual([
      // 200 unreported requests at the 20 rows per request the API reported that hour.
      { hourStartUtc: '2024-09-03T10:00:00.000Z', requests: 500, rowsPredicted: 10_000 },
      // None reported: at least one row each.
      { hourStartUtc: '2024-09-03T11:00:00.000Z', requests: 40, rowsPredicted: 40 },
      // No ingress data is not claimed as zero-or-more: the hour stays as the API left it.
      { hourStartUtc: '2024-09-03T12:00:00.000Z', requests: 0, rowsPredicted: 0 },
    ]);
    // Reading the same hours again (the next collection) adds nothing twice.
    await collect('api-counted');
    expect((await ctx.servingLoad.history(modelName)).slice(0, 2).map((h) => h.requests)).toEqual([500, 40]);
    expect(await ctx.servingLoad.periodTotals(modelName, SINCE, ENDED)).toMatchObject({
      requests: 540,
      rowsPredicted: 10_040,
    });
  });

  it('without recent replica data it neither wakes the app nor claims an idle hour', async () => {
    fake.setMetrics(appId('api-unknown'), { Replicas: replicas(() => undefined) });
    const { kind, calls } = await collect('api-unknown');
    expect(kind).toBe('failed');
    expect(calls).toEqual([]);
  });
});
