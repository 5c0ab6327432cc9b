import { loadSettings } from '../../../shared/config';
import { composePipeline } from '../../../functions/composition';
import { LocalLauncher } from '../../../shared/containers/localLauncher';
import { bindActivities, PIPELINE_ACTIVITIES } from '../../../functions/activities';
import type { PipelineContext } from '../../../shared/pipeline/context';
import { rttP95MsBetween } from '../../../shared/serving/regionLatency';
import { CONTAINER_APPS_SIZES } from '../../../shared/serving/capacityProfile';
import { SERVING_PLAN_RECORD_SCHEMA } from '../../../shared/serving/servingPlanRecord';
import type { TreeCountAccuracy } from '../../../shared/serving/treeCountAccuracy';
import { uniqueName } from '../../support/storage';

/**
 * The `planModelServing` activity on real storage (Azurite): it reads the load the model API
 * reported and the version's recorded accuracy by tree count, the bundled carbon traces and the
 * measured capacity profile, and plans through the activity contract the orchestrator uses.
 */
const NOW = '2024-09-04T10:30:00.000Z';
const HOUR_MS = 3_600_000;

async function pipeline(model: string, over: Record<string, string> = {}): Promise<PipelineContext> {
  const connectionString = process.env.AZURITE_TEST_CONNECTION_STRING;
  if (!connectionString) throw new Error('Azurite was not started');
  const settings = loadSettings({
    DataStorage: connectionString,
    MODEL_NAME: model,
    MODEL_API_HOST: 'containerapps',
    SERVING_LATENCY_BUDGET_MS: '30',
    ...over,
  });
  // No API is launched here: a local launcher keeps Container Apps settings out of the way.
  return composePipeline(settings, {
    now: () => new Date(NOW),
    launcher: new LocalLauncher({ entrypoints: {} }),
    log: () => {},
  });
}

/** A /metrics/load report with business-hours load for the last `days` days before NOW. */
function loadReport(days: number, requestsPerBusyHour = 400) {
  const hours = [];
  const endMs = Math.floor(Date.parse(NOW) / HOUR_MS) * HOUR_MS;
  for (let ms = endMs - days * 24 * HOUR_MS; ms < endMs; ms += HOUR_MS) {
    const hour = new Date(ms).getUTCHours();
    if (hour < 8 || hour >= 17) continue;
    hours.push({
      hourStartUtc: new Date(ms).toISOString(),
      requests: requestsPerBusyHour,
      rowsPredicted: requestsPerBusyHour * 20,
      status4xx: 0,
      status5xx: 0,
      p50Ms: 4,
      p99Ms: 20,
    });
  }
  return { since: new Date(endMs - days * 24 * HOUR_MS).toISOString(), coldStartMs: 1800, hours };
}

/** 50 trees whose accuracy rises to 0.92: 20 trees are within 0.2 pt. */
function accuracyByTrees(): TreeCountAccuracy {
  const points = Array.from({ length: 50 }, (_, i) => ({
    trees: i + 1,
    accuracy: i + 1 >= 20 ? 0.92 - (50 - (i + 1)) * 0.00005 : 0.85 + i * 0.003,
  }));
  return { fullTrees: 50, holdoutRows: 4000, points };
}

async function plan(ctx: PipelineContext, versionId = 'v1') {
  const handlers = bindActivities(async () => ctx, PIPELINE_ACTIVITIES);
  const result = await handlers.planModelServing(
    { modelName: ctx.settings.MODEL_NAME, versionId, nowIso: NOW },
    {} as never,
  );
  if (!result.ok) throw new Error(result.failure.message);
  return SERVING_PLAN_RECORD_SCHEMA.parse(result.value);
}

describe('planModelServing', () => {
  it('plans region, size, trees and scale-to-zero from the stored load and the recorded accuracy', async () => {
    const ctx = await pipeline(uniqueName('plan'));
    await ctx.servingLoad.record(ctx.settings.MODEL_NAME, 'api-1', loadReport(3), {
      nowIso: NOW,
      shiftMs: 0,
    });
    await ctx.servingLoad.saveTreeAccuracy(ctx.settings.MODEL_NAME, 'v1', accuracyByTrees());
    const p = await plan(ctx);
    expect(p.kind).toBe('planned');
    expect(ctx.settings.ALLOWED_REGIONS).toContain(p.region);
    expect(rttP95MsBetween(ctx.settings.HOME_REGION, p.region)).toBeLessThanOrEqual(30);
    expect(CONTAINER_APPS_SIZES).toContainEqual(p.size);
    expect(p.servedTrees).toBeGreaterThanOrEqual(20);
    expect(p.servedTrees).toBeLessThan(50);
    expect((p.fullAccuracy ?? 0) - (p.servedAccuracy ?? 0)).toBeLessThanOrEqual(0.002 + 1e-12);
    expect(p.scaling).toMatchObject({ kind: 'scale-to-zero', minReplicas: 0 });
    expect(p.peakRowsPerSecond).toBeGreaterThan((400 * 20) / 3600);
  });

  it('falls back to the safe always-on plan, with its reason, when no load was recorded', async () => {
    const ctx = await pipeline(uniqueName('noload'));
    await ctx.servingLoad.saveTreeAccuracy(ctx.settings.MODEL_NAME, 'v1', accuracyByTrees());
    const p = await plan(ctx);
    expect(p).toMatchObject({
      kind: 'always-on-fallback',
      region: ctx.settings.HOME_REGION,
      // Today's 1 vCPU, as Container Apps offers it (2 GiB per vCPU).
      size: { cpuCores: 1, memoryGb: 2 },
      servedTrees: null,
      scaling: { kind: 'always-on' },
      reasons: ['load data unusable: no load history'],
    });
  });

  it('falls back when the collector stopped and the load is stale', async () => {
    const ctx = await pipeline(uniqueName('stale'));
    const old = loadReport(3);
    const shiftMs = -4 * 24 * HOUR_MS; // the same load, four days earlier: nothing watched since
    await ctx.servingLoad.record(ctx.settings.MODEL_NAME, 'api-1', old, {
      nowIso: new Date(Date.parse(NOW) + shiftMs).toISOString(),
      shiftMs,
    });
    await ctx.servingLoad.saveTreeAccuracy(ctx.settings.MODEL_NAME, 'v1', accuracyByTrees());
    const p = await plan(ctx);
    expect(p.kind).toBe('always-on-fallback');
    expect(p.reasons[0]).toMatch(/load data unusable: newest load hour .* old/);
  });
});

describe('ServingLoadStore', () => {
  it('adds only what a report shows beyond the previous one from the same API, once', async () => {
    const ctx = await pipeline(uniqueName('load'));
    const model = ctx.settings.MODEL_NAME;
    const hour = '2024-09-04T09:00:00.000Z';
    const report = (requests: number) => ({
      since: '2024-09-04T08:59:00.000Z',
      coldStartMs: 1500,
      hours: [
        {
          hourStartUtc: hour,
          requests,
          rowsPredicted: requests * 3,
          status4xx: 1,
          status5xx: 0,
          p50Ms: 3,
          p99Ms: 9,
        },
      ],
    });
    const first = await ctx.servingLoad.record(model, 'api-1', report(10), { nowIso: NOW, shiftMs: 0 });
    // The cold start is counted in the hour the API started (08:00), the requests in theirs.
    expect(first).toEqual({ hoursChanged: 2, requestsAdded: 10, coldStartsAdded: 1 });
    // The same report again (a retried activity) adds nothing; a later one adds the increase.
    expect(
      await ctx.servingLoad.record(model, 'api-1', report(10), { nowIso: NOW, shiftMs: 0 }),
    ).toMatchObject({
      requestsAdded: 0,
      coldStartsAdded: 0,
    });
    await ctx.servingLoad.record(model, 'api-1', report(25), { nowIso: NOW, shiftMs: 0 });
    // A second API (another replica or version) adds its own counts to the same hour.
    await ctx.servingLoad.record(model, 'api-2', report(5), { nowIso: NOW, shiftMs: 0 });
    const hours = await ctx.servingLoad.hours(model);
    expect(hours.find((h) => h.hourStartUtc === hour)).toMatchObject({
      requests: 30,
      rowsPredicted: 90,
      status4xx: 2,
      p99Ms: 9,
    });
    expect(hours[0]).toMatchObject({ requests: 0, coldStarts: 2, coldStartMsTotal: 3000 });
    // Watched from 08:00 to the 10:00 hour: the idle 10:00 hour counts as observed with no load.
    expect(hours.map((h) => h.hourStartUtc)).toEqual([
      '2024-09-04T08:00:00.000Z',
      hour,
      '2024-09-04T10:00:00.000Z',
    ]);
    expect(hours[2].requests).toBe(0);
  });

  it('rejects a malformed load report with a clear error', async () => {
    const ctx = await pipeline(uniqueName('bad'));
    await expect(
      ctx.servingLoad.record(
        ctx.settings.MODEL_NAME,
        'api-1',
        { since: 'x', hours: 3 },
        { nowIso: NOW, shiftMs: 0 },
      ),
    ).rejects.toThrow(/metrics\/load response/);
  });
});
