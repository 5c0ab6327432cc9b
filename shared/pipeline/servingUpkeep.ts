import { LaunchError, describeError } from '../errors';
import { modelApiKeySource } from '../modelApi/credentials';
import { scheduledActiveAt } from '../serving/servingPlanner';
import { planFingerprint, describePlanRecord, type ServingPlanRecord } from '../serving/servingPlanRecord';
import type { RecordedLoad } from '../serving/servingLoadStore';
import { modelApiFetch, type ModelApiFetch } from '../modelApi/modelApiFetch';
import {
  checkModelApiHealth,
  modelApiCertificate,
  modelApiGroupName,
  modelApiSpec,
} from './containerActivities';
import type { PipelineContext } from './context';
import { retrainInstanceId } from './contracts';
import { planModelServing } from './servingPlanning';
import { replicaReaderFor, retireAndRecordPeriod } from './servingActivities';
import type { AppReplicaReader } from '../sci/azureMonitorMetrics';
import type { ServingRecord } from './servingState';
import { deployedPipelines } from '../pipelines/deployedPipelines';

/**
 * What keeps serving matched to load and grid between retrains (the `servingPlanner` timer):
 * 1. store the serving API's load per hour from its own /metrics/load;
 * 2. re-plan (daily) and, when the plan changed, apply it through the same idempotent switch the
 *    orchestrator uses: launch the planned API under a name derived from version and plan, check
 *    its health, switch serving only if the API it replaces still serves, retire the old one;
 * 3. on ACI, stop or start the serving group as the plan's weekly schedule says.
 * Every step can be repeated after a crash: retiring what a switch left, creating an existing
 * group and switching to the group already serving are no-ops.
 */
const HOUR_MS = 3_600_000;

/** Hosts whose replicas come and go (a front at zero would start one only to be asked for metrics). */
interface ReplicaAware {
  scaledToZero(groupName: string): boolean;
}
const replicaAware = (launcher: unknown): launcher is ReplicaAware =>
  typeof (launcher as Partial<ReplicaAware>).scaledToZero === 'function';

/** The pipeline clock's lead over the wall clock, in whole hours (0 on Azure; virtual time locally). */
function hourShiftMs(ctx: PipelineContext): number {
  return Math.round((ctx.now().getTime() - Date.now()) / HOUR_MS) * HOUR_MS;
}

/** Stores the load one model-API replica reports at `url` (the serving endpoint, or a replica about to stop). */
export async function recordLoadFrom(
  ctx: PipelineContext,
  modelName: string,
  groupName: string,
  url: string,
  fetchImpl: ModelApiFetch = modelApiFetch(null),
): Promise<RecordedLoad> {
  const { headers } = await modelApiKeySource(ctx.settings).credentials(ctx.launcher.kind);
  const response = await fetchImpl(`${url}/metrics/load`, {
    headers,
    signal: AbortSignal.timeout(5000),
  });
  if (response.status !== 200) {
    throw new LaunchError(`${groupName} /metrics/load answered ${response.status}`, {
      retryable: response.status >= 500,
    });
  }
  const report = (await response.json()) as { since?: unknown };
  return ctx.servingLoad.record(modelName, `${groupName}@${String(report.since)}`, report, {
    nowIso: ctx.now().toISOString(),
    shiftMs: hourShiftMs(ctx),
  });
}

export type LoadCollection =
  | { kind: 'no-api' }
  | { kind: 'idle' }
  | { kind: 'recorded'; load: RecordedLoad }
  | { kind: 'failed'; reason: string };

/** Step 1: the serving API's load since the last collection (an API at zero was idle: recorded as such). */
export async function collectServingLoad(
  ctx: PipelineContext,
  modelName: string,
  fetchImpl?: ModelApiFetch,
  replicas: AppReplicaReader | undefined = replicaReaderFor(ctx),
): Promise<LoadCollection> {
  const serving = await ctx.serving.get(modelName);
  if (!serving?.endpoint) return { kind: 'no-api' };
  if (replicaAware(ctx.launcher) && ctx.launcher.scaledToZero(serving.groupName)) {
    await ctx.servingLoad.markIdleThrough(modelName, ctx.now().toISOString());
    return { kind: 'idle' };
  }
  if (replicas && serving.plan?.scaling.kind === 'scale-to-zero') {
    await recordIngressRequests(ctx, modelName, serving, replicas);
    // A call to /metrics/load would start a replica of an app at zero (and keep it for the
    // cool-down): ask Azure Monitor first, and never wake the app only to be counted.
    const state = await recentReplicaState(replicas, serving, ctx.now());
    if (state.kind === 'at-zero') {
      await ctx.servingLoad.markIdleThrough(modelName, ctx.now().toISOString());
      return { kind: 'idle' };
    }
    if (state.kind === 'unknown')
      return { kind: 'failed', reason: `not woken to read its load: ${state.reason}` };
  }
  try {
    return {
      kind: 'recorded',
      load: await recordLoadFrom(
        ctx,
        modelName,
        serving.groupName,
        serving.endpoint,
        fetchImpl ?? modelApiFetch(serving.tls),
      ),
    };
  } catch (error) {
    // Not recorded means not watched: the load goes stale and the planner falls back, with a reason.
    return { kind: 'failed', reason: describeError(error) };
  }
}

/** Complete hours whose ingress requests each collection (re)reads: late Monitor data is caught up. */
const INGRESS_HOURS_BACK = 3;

/**
 * Stores Azure Monitor's ingress `Requests` of a Container App per complete hour of its serving
 * period, so what a replica served before it scaled to zero still counts. A failed read is logged
 * and skipped: the next collection reads the hour again.
 */
async function recordIngressRequests(
  ctx: PipelineContext,
  modelName: string,
  serving: ServingRecord,
  replicas: AppReplicaReader,
): Promise<void> {
  const currentHourMs = Math.floor(ctx.now().getTime() / HOUR_MS) * HOUR_MS;
  const firstMs = Math.max(
    Math.floor(Date.parse(serving.since) / HOUR_MS) * HOUR_MS,
    currentHourMs - INGRESS_HOURS_BACK * HOUR_MS,
  );
  for (let hourMs = firstMs; hourMs < currentHourMs; hourMs += HOUR_MS) {
    const hourStartUtc = new Date(hourMs).toISOString();
    try {
      const m = await replicas({
        appName: serving.groupName,
        region: serving.region,
        startedAt: hourStartUtc,
        endedAt: new Date(hourMs + HOUR_MS).toISOString(),
      });
      // No minute with data is unknown, not zero requests.
      if (m.requests !== null) await ctx.servingLoad.recordIngressHour(modelName, hourStartUtc, m.requests);
    } catch (error) {
      ctx.log(
        `ingress requests of ${serving.groupName} at ${hourStartUtc} not read: ${describeError(error)}`,
      );
    }
  }
}

/** How far back the replica count is read; Azure Monitor reports minutes a few minutes late. */
const RECENT_REPLICAS_MS = 10 * 60_000;

type RecentReplicas = { kind: 'running' } | { kind: 'at-zero' } | { kind: 'unknown'; reason: string };

async function recentReplicaState(
  replicas: AppReplicaReader,
  serving: ServingRecord,
  now: Date,
): Promise<RecentReplicas> {
  const startedAt = new Date(Math.max(Date.parse(serving.since), now.getTime() - RECENT_REPLICAS_MS));
  if (startedAt.getTime() >= now.getTime()) return { kind: 'running' };
  try {
    const m = await replicas({
      appName: serving.groupName,
      region: serving.region,
      startedAt: startedAt.toISOString(),
      endedAt: now.toISOString(),
    });
    if (m.replicaSeconds > 0) return { kind: 'running' };
    if (m.minutesWithData === 0)
      return { kind: 'unknown', reason: 'Azure Monitor has no recent Replicas data' };
    return { kind: 'at-zero' };
  } catch (error) {
    return { kind: 'unknown', reason: `Azure Monitor Replicas query failed: ${describeError(error)}` };
  }
}

export type Replan =
  | { kind: 'no-api' }
  | { kind: 'unchanged'; plan: ServingPlanRecord }
  | { kind: 'switched'; plan: ServingPlanRecord; from: string; to: string }
  | { kind: 'superseded'; plan: ServingPlanRecord }
  | { kind: 'unhealthy'; plan: ServingPlanRecord; detail: string };

/** Step 2: re-plan the serving API's configuration and apply a changed plan. */
export async function replanServing(
  ctx: PipelineContext,
  modelName: string,
  options: { healthTimeoutMs?: number } = {},
): Promise<Replan> {
  await retirePending(ctx, modelName);
  const current = await ctx.serving.get(modelName);
  if (!current) return { kind: 'no-api' };
  const nowIso = ctx.now().toISOString();
  const plan = await planModelServing(ctx, { modelName, versionId: current.versionId, nowIso });
  if (current.plan && planFingerprint(current.plan) === planFingerprint(plan))
    return { kind: 'unchanged', plan };

  const runId = `replan${planFingerprint(plan)}${current.versionId.replace(/[^a-z0-9]/gi, '').slice(-8)}`;
  const groupName = modelApiGroupName(runId);
  const spec = modelApiSpec(
    ctx,
    { groupName, modelName, versionId: current.versionId, instanceId: retrainInstanceId(modelName), runId },
    plan,
    // On Azure the key comes from Key Vault; the default (a per-run key) only works locally.
    await modelApiKeySource(ctx.settings).credentials(ctx.launcher.kind),
    await modelApiCertificate(ctx, groupName),
  );
  await ctx.launcher.create(spec);
  const health = await waitHealthy(ctx, groupName, current.versionId, options.healthTimeoutMs ?? 60_000);
  if (!health.healthy || !health.endpoint) {
    await ctx.launcher.delete(groupName);
    return { kind: 'unhealthy', plan, detail: health.detail };
  }
  const next: ServingRecord = {
    groupName,
    endpoint: health.endpoint,
    versionId: current.versionId,
    region: spec.region,
    cpuCores: spec.cpuCores,
    memoryGb: spec.memoryGb,
    since: ctx.now().toISOString(),
    plan,
    ...(health.tls ? { tls: health.tls } : {}),
  };
  const retiring = await ctx.serving.switchFrom(modelName, current.groupName, next);
  if (retiring === null) {
    // A rollout replaced the API meanwhile: its own plan stands, this one is dropped.
    await ctx.launcher.delete(groupName);
    return { kind: 'superseded', plan };
  }
  ctx.log(
    `re-planned serving of ${modelName}: ${describePlanRecord(plan)} (${current.groupName} -> ${groupName})`,
  );
  await retirePending(ctx, modelName);
  return { kind: 'switched', plan, from: current.groupName, to: groupName };
}

/** Retires every API a switch left to retire, recording each one's serving period. */
async function retirePending(ctx: PipelineContext, modelName: string): Promise<void> {
  const row = (await ctx.serving.listAll()).find((r) => r.modelName === modelName);
  for (const previous of row?.retiring ?? []) {
    await retireAndRecordPeriod(ctx, { modelName, previous, endedAt: ctx.now().toISOString() });
  }
}

async function waitHealthy(ctx: PipelineContext, groupName: string, versionId: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let health = await checkModelApiHealth(ctx, { groupName, expectedVersionId: versionId });
  while (!health.healthy && !health.lost && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    health = await checkModelApiHealth(ctx, { groupName, expectedVersionId: versionId });
  }
  return health;
}

/** Step 3: an ACI model API runs only in the plan's active hours. */
export async function applyServingSchedule(
  ctx: PipelineContext,
  modelName: string,
  aci: { stop(groupName: string): Promise<unknown>; start(groupName: string): Promise<unknown> },
): Promise<'started' | 'stopped' | 'not-scheduled'> {
  const serving = await ctx.serving.get(modelName);
  if (serving?.plan?.scaling.kind !== 'scheduled') return 'not-scheduled';
  if (scheduledActiveAt(serving.plan.scaling, ctx.now().getTime())) {
    await aci.start(serving.groupName);
    return 'started';
  }
  await aci.stop(serving.groupName);
  return 'stopped';
}

const REPLAN_HOUR_UTC = 0;

export type ServingUpkeepReport =
  | {
      readonly modelName: string;
      readonly kind: 'done';
      readonly load: LoadCollection;
      readonly replan: Replan | null;
      readonly schedule: 'started' | 'stopped' | 'not-scheduled';
    }
  | { readonly modelName: string; readonly kind: 'failed'; readonly reason: string };

/**
 * One run of the `servingPlanner` timer: each declared model (and any model still served) in turn,
 * its load every hour and its re-plan once a day. A model whose upkeep fails is reported and left
 * for the next run; it never holds up the others.
 */
export async function servingUpkeep(ctx: PipelineContext): Promise<ServingUpkeepReport[]> {
  const reports: ServingUpkeepReport[] = [];
  const aci = ctx.launcher as Partial<Parameters<typeof applyServingSchedule>[2]>;
  const models = new Set([
    ...deployedPipelines(ctx.settings).pipelines.map((p) => p.name),
    ...(await ctx.serving.listAll()).map((s) => s.modelName),
  ]);
  for (const modelName of models) {
    try {
      const load = await collectServingLoad(ctx, modelName);
      const replan = ctx.now().getUTCHours() === REPLAN_HOUR_UTC ? await replanServing(ctx, modelName) : null;
      const schedule =
        typeof aci.stop === 'function' && typeof aci.start === 'function'
          ? await applyServingSchedule(ctx, modelName, {
              stop: aci.stop.bind(aci),
              start: aci.start.bind(aci),
            })
          : 'not-scheduled';
      reports.push({ modelName, kind: 'done', load, replan, schedule });
    } catch (error) {
      ctx.log(`serving upkeep of ${modelName} failed, next run retries: ${describeError(error)}`);
      reports.push({ modelName, kind: 'failed', reason: describeError(error) });
    }
  }
  return reports;
}
