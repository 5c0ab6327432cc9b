import { z } from 'zod';
import { parseWith } from '../validation';
import type { ActivityOutput, ParsedActivityInput } from './activityContracts';
import type { PipelineContext } from './context';
import type { StageUsage } from './contracts';
import type { ServingRecord } from './servingState';
import { footprintOfUsage } from './runRecording';
import type { ReplicaUsage, ResourceUsage } from '../containers/launcher';
import { keptColdStarts, scheduledSeconds, type ServeAccounting } from '../serving/serveAccounting';
import { modelApiCredentials } from '../modelApi/credentials';

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
  fetchImpl: typeof fetch = fetch,
): Promise<StageUsage | null> {
  const { previous, endedAt, modelName } = input;
  const usage = await ctx.launcher.usage(previous.groupName).catch(() => null);
  let counted = 0;
  // A front at zero would start a replica just to answer: its served rows are in the stored load.
  if (previous.endpoint && !usage?.serving) {
    try {
      const response = await fetchImpl(`${previous.endpoint}/model`, {
        headers: modelApiCredentials(ctx.launcher.kind).headers,
        signal: AbortSignal.timeout(5000),
      });
      counted = parseWith(SERVED_INFO, await response.json(), '/model response').predictionsServed;
    } catch {
      // A dead old API served nothing more we can count; its time still counts below.
    }
  }
  const stage = await servingPeriodStage(ctx, modelName, previous, endedAt, usage, counted);
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
): Promise<StageUsage> {
  const stored = await ctx.servingLoad.periodTotals(modelName, record.since, endedAt);
  const predictions = Math.max(stored.rowsPredicted, countedByApi);
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
    serving: serveAccounting(record, endedAt, usage?.serving ?? null, stored, predictions),
  };
}

/** The retire step as the orchestrator and the re-plan run it: the period is also kept for the report. */
export async function retireAndRecordPeriod(
  ctx: PipelineContext,
  input: ParsedActivityInput<'retireModelApi'>,
): Promise<StageUsage | null> {
  const stage = await retireModelApi(ctx, input);
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
      replicaSeconds: Math.min(wallSeconds, stored.busyHours * 3600),
      replicaSource: 'load-hours',
    };
  }
  return { ...fromLoad, replicaSeconds: wallSeconds, replicaSource: 'always-on' };
}
