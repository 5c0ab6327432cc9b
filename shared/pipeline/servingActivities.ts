import { z } from 'zod';
import { parseWith } from '../validation';
import type { ActivityOutput, ParsedActivityInput } from './activityContracts';
import type { PipelineContext } from './context';
import type { StageUsage } from './contracts';
import type { ServingRecord } from './servingState';
import { footprintOfUsage } from './runRecording';
import type { ReplicaUsage, ResourceUsage } from '../containers/launcher';
import { keptColdStarts, scheduledSeconds, type ServeAccounting } from '../serving/serveAccounting';
import { modelApiKeySource } from '../modelApi/credentials';
import { modelApiFetch, type ModelApiFetch } from '../modelApi/modelApiFetch';
import { azureMonitorReplicaReader, type AppReplicaReader } from '../sci/azureMonitorMetrics';

/** Replica time of a period as Azure Monitor measured it, or why it could not be used. */
export type MeasuredReplicas =
  | { readonly kind: 'measured'; readonly replicaSeconds: number; readonly requests: number | null }
  | { readonly kind: 'unavailable'; readonly reason: string };

/** Container Apps are the one host whose replica time Azure Monitor reports; elsewhere there is no reader. */
export function replicaReaderFor(ctx: PipelineContext): AppReplicaReader | undefined {
  if (ctx.launcher.kind !== 'containerapps') return undefined;
  return azureMonitorReplicaReader(ctx.settings);
}

async function measureReplicas(
  reader: AppReplicaReader,
  record: ServingRecord,
  endedAt: string,
): Promise<MeasuredReplicas> {
  try {
    const m = await reader({
      appName: record.groupName,
      region: record.region,
      startedAt: record.since,
      endedAt: Date.parse(endedAt) > Date.parse(record.since) ? endedAt : record.since,
    });
    if (m.minutesWithData < m.minutes) {
      // A missing minute is unknown, not zero replicas: a partial sum would look greener than it was.
      return {
        kind: 'unavailable',
        reason: `Azure Monitor Replicas has ${m.minutes - m.minutesWithData} of ${m.minutes} minutes without data`,
      };
    }
    return { kind: 'measured', replicaSeconds: m.replicaSeconds, requests: m.requests };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { kind: 'unavailable', reason: `Azure Monitor Replicas query failed: ${message}`.slice(0, 500) };
  }
}

/**
 * The activities that move serving from one model API to the next. The switch records the
 * replaced API as `retiring` in the same write that points serving at the new one, so a crash
 * between the switch and the retirement cannot lose the old API: the repeated switch returns it
 * again, and retiring removes it from the record only after it was deleted.
 */
export async function switchServing(
  ctx: PipelineContext,
  input: ParsedActivityInput<'switchServing'>,
): Promise<ActivityOutput<'switchServing'>> {
  const { modelName, ...record } = input;
  return { retiring: await ctx.serving.switchTo(modelName, record) };
}

const SERVED_INFO = z.looseObject({ predictionsServed: z.number().int().nonnegative() });

/**
 * Removes a model API that was serving before, after recording what its serving period cost: the
 * plan it ran in, the time its replicas reserved (measured by the scale-to-zero front locally; the
 * plan's schedule on ACI; the whole period when always on), the predictions it served (the load it
 * reported per hour, else its own counter) and its cold starts.
 */
export async function retireModelApi(
  ctx: PipelineContext,
  input: ParsedActivityInput<'retireModelApi'>,
  fetchImpl: ModelApiFetch = modelApiFetch(input.previous.tls),
  replicas: AppReplicaReader | undefined = replicaReaderFor(ctx),
): Promise<StageUsage | null> {
  const { previous, endedAt, modelName } = input;
  const usage = await ctx.launcher.usage(previous.groupName).catch(() => null);
  let counted = 0;
  // A front at zero would start a replica just to answer: its served rows are in the stored load.
  if (previous.endpoint && !usage?.serving) {
    // Outside the catch: a key that cannot be read fails the activity (and is retried), where a
    // swallowed failure would record a period that served nothing.
    const { headers } = await modelApiKeySource(ctx.settings).credentials(ctx.launcher.kind);
    try {
      const response = await fetchImpl(`${previous.endpoint}/model`, {
        headers,
        signal: AbortSignal.timeout(5000),
      });
      counted = parseWith(SERVED_INFO, await response.json(), '/model response').predictionsServed;
    } catch {
      // A dead old API served nothing more we can count; its time still counts below.
    }
  }
  const stage = await servingPeriodStage(ctx, modelName, previous, endedAt, usage, counted, replicas);
  await ctx.launcher.delete(previous.groupName);
  await ctx.serving.markRetired(modelName, previous.groupName);
  const serving = stage.serving;
  ctx.log(
    `retired model API ${previous.groupName} (${previous.versionId}) after ${stage.functionalUnits} predictions, ` +
      `${((serving?.replicaSeconds ?? 0) / 3600).toFixed(1)} replica-hours (${serving?.replicaSource ?? '-'}), ${serving?.coldStarts ?? 0} cold starts`,
  );
  return stage;
}

/**
 * The serve stage of one API's serving period up to `endedAt` (also for the API still serving, at
 * the end of `npm start`): its plan, reserved time, predictions and cold starts.
 */
export async function servingPeriodStage(
  ctx: PipelineContext,
  modelName: string,
  record: ServingRecord,
  endedAt: string,
  usage: ResourceUsage | null,
  countedByApi = 0,
  replicas: AppReplicaReader | undefined = replicaReaderFor(ctx),
): Promise<StageUsage> {
  const stored = await ctx.servingLoad.periodTotals(modelName, record.since, endedAt);
  const predictions = Math.max(stored.rowsPredicted, countedByApi);
  const measured = replicas && !usage?.serving ? await measureReplicas(replicas, record, endedAt) : null;
  return {
    stage: 'serve',
    region: record.region,
    startedAt: record.since,
    endedAt,
    cpuCores: record.cpuCores,
    memoryGb: record.memoryGb,
    cpuSeconds: usage?.cpuSeconds ?? null,
    peakMemoryBytes: usage?.peakRssBytes ?? null,
    resourceSource: usage ? 'local-process' : 'assumed',
    functionalUnits: predictions,
    serving: serveAccounting(record, endedAt, usage?.serving ?? null, stored, predictions, measured),
  };
}

/** The retire step as the orchestrator and the re-plan run it: the period is also kept for the report. */
export async function retireAndRecordPeriod(
  ctx: PipelineContext,
  input: ParsedActivityInput<'retireModelApi'>,
  replicas: AppReplicaReader | undefined = replicaReaderFor(ctx),
): Promise<StageUsage | null> {
  const stage = await retireModelApi(ctx, input, undefined, replicas);
  if (stage) {
    await ctx.servingLoad.savePeriod(
      input.modelName,
      input.previous.groupName,
      await footprintOfUsage(ctx, stage),
    );
  }
  return stage;
}

function serveAccounting(
  previous: ServingRecord,
  endedAt: string,
  front: ReplicaUsage | null,
  stored: { requests: number; coldStarts: number; coldStartMsTotal: number; busyHours: number },
  predictions: number,
  measured: MeasuredReplicas | null,
): ServeAccounting {
  const fromMs = Date.parse(previous.since);
  const toMs = Math.max(fromMs, Date.parse(endedAt));
  const wallSeconds = (toMs - fromMs) / 1000;
  const scaling = previous.plan?.scaling ?? { kind: 'always-on' as const };
  const base = { plan: previous.plan, predictions };
  if (front) {
    return {
      ...base,
      replicaSeconds: Math.min(wallSeconds, front.replicaSeconds),
      replicaSource: 'scale-to-zero-front',
      requests: front.requests,
      coldStarts: front.coldStarts,
      coldStartMs: keptColdStarts(front.coldStartMs),
    };
  }
  const coldStartMs = stored.coldStarts > 0 ? [Math.round(stored.coldStartMsTotal / stored.coldStarts)] : [];
  const fromLoad = { ...base, requests: stored.requests, coldStarts: stored.coldStarts, coldStartMs };
  if (measured?.kind === 'measured') {
    return {
      ...fromLoad,
      // Ingress also counts the hours no one read /metrics/load for (an app at zero is not woken).
      requests: Math.max(stored.requests, measured.requests ?? 0),
      // Not clamped to the wall time: several replicas reserve several seconds per second.
      replicaSeconds: measured.replicaSeconds,
      replicaSource: 'azure-monitor',
    };
  }
  const fallback = measured?.kind === 'unavailable' ? { replicaFallbackReason: measured.reason } : {};
  if (scaling.kind === 'scheduled') {
    return {
      ...fromLoad,
      replicaSeconds: scheduledSeconds(scaling.activeHoursOfWeekUtc, fromMs, toMs),
      replicaSource: 'aci-schedule',
    };
  }
  if (scaling.kind === 'scale-to-zero') {
    // Without replica metrics, an hour with requests counts as one replica-hour (cooldown included).
    return {
      ...fromLoad,
      ...fallback,
      replicaSeconds: Math.min(wallSeconds, stored.busyHours * 3600),
      replicaSource: 'load-hours',
    };
  }
  return { ...fromLoad, ...fallback, replicaSeconds: wallSeconds, replicaSource: 'always-on' };
}
