import { METRIC } from '../telemetry/telemetry';
import { withCarbonDeadline } from '../carbon/deadline';
import { describeError } from '../errors';
import { zoneForRegion } from '../carbon/provider';
import { carbonPollNeed, type PollNeed, type WaitingRequest } from '../policy/carbonPollNeed';
import { nextOccurrence, parseSchedule } from './ncrontab';
import {
  START_TRAINING_EVENT,
  retrainInstanceId,
  type OrchestrationTimings,
  type StartTrainingEvent,
} from './contracts';
import type { PipelineContext } from './context';
import { APP_TAG } from './context';
import { candidateRegions, gatherRegionCarbon, planFromCarbon, type RegionCarbon } from './planning';
import { isActive, startRetrainSingleton, type OrchestrationClient } from './orchestrationClient';
import type { PendingRetrain } from './pendingRetrains';

/**
 * The timer-triggered carbon poller: re-plans every waiting retrain with a fresh forecast and tells
 * its orchestration when the window opens or the deadline forces a start, restarts orchestrations a
 * crash left without one, and deletes container groups no live orchestration owns (a terminated run
 * cannot clean up after itself).
 *
 * Providers are called only when that can change a decision (shared/policy/carbonPollNeed.ts);
 * otherwise the poll ends after reading the pending table. When it does call them, all regions and
 * all retries share one deadline (CARBON_POLL_DEADLINE_SECONDS, shorter than the timer period), so a
 * hanging provider or a `Retry-After: 3600` ends the live link in time and the chain answers from
 * the cache or the annual average instead.
 */
export interface PollSummary {
  at: string;
  carbon: PollNeed;
  readings: { region: string; zone: string; gramsPerKwh: number | null; source: string | null }[];
  signalled: { modelName: string; reason: StartTrainingEvent['reason']; region: string; startAt: string }[];
  restarted: string[];
  orphansDeleted: string[];
  /** Orphans whose delete failed this time (the next poll tries again). */
  orphanDeleteFailures: { groupName: string; reason: string }[];
}

export function orchestrationTimings(ctx: PipelineContext): OrchestrationTimings {
  return {
    containerPollSeconds: ctx.settings.CONTAINER_POLL_SECONDS,
    trainingTimeoutMinutes: ctx.settings.TRAINING_TIMEOUT_MINUTES,
    expectedTrainingMinutes: ctx.settings.TRAINING_EXPECTED_MINUTES,
    healthCheckAttempts: ctx.settings.HEALTH_CHECK_ATTEMPTS,
    healthCheckIntervalSeconds: ctx.settings.HEALTH_CHECK_INTERVAL_SECONDS,
  };
}

export async function pollCarbon(
  ctx: PipelineContext,
  client: OrchestrationClient,
  timings: OrchestrationTimings = orchestrationTimings(ctx),
): Promise<PollSummary> {
  const now = ctx.now();
  const nowIso = now.toISOString();
  const nextPollMs = nextOccurrence(parseSchedule(ctx.settings.CARBON_POLL_SCHEDULE), now).getTime();
  const summary: PollSummary = {
    at: nowIso,
    carbon: { kind: 'skip', reason: 'no retrain request is waiting for a window' },
    readings: [],
    signalled: [],
    restarted: [],
    orphansDeleted: [],
    orphanDeleteFailures: [],
  };
  const active = [];
  for (const pending of await ctx.pending.listWaiting()) {
    const { request } = pending;
    const status = await client.status(retrainInstanceId(request.modelName));
    if (!status || !isActive(status.runtimeStatus)) {
      // The request was stored but its orchestration never started (or died): start it again.
      const outcome = await startRetrainSingleton(client, { request, timings, generation: 0 });
      if (outcome === 'started') summary.restarted.push(request.modelName);
      continue;
    }
    active.push(pending);
  }
  summary.carbon = carbonPollNeed({
    waiting: active.map((p): WaitingRequest => ({
      modelName: p.request.modelName,
      deadlineMs: Date.parse(p.request.deadline),
      signalled: Boolean(p.signalledAt),
      plannedAtMs: p.latestPlan ? Date.parse(p.updatedAt) : null,
      planStartMs: p.latestPlan ? Date.parse(p.latestPlan.startAt) : null,
    })),
    nowMs: now.getTime(),
    nextPollMs,
    forecastRefreshMinutes: ctx.settings.CARBON_FORECAST_REFRESH_MINUTES,
    expectedTrainingMinutes: ctx.settings.TRAINING_EXPECTED_MINUTES,
  });
  if (summary.carbon.kind === 'poll') {
    const carbon = await withCarbonDeadline(ctx.settings.CARBON_POLL_DEADLINE_SECONDS * 1000, () =>
      gatherRegionCarbon(ctx, candidateRegions(ctx)),
    );
    summary.readings = recordReadings(ctx, carbon);
    for (const pending of active) {
      if (!pending.signalledAt) await replan(ctx, client, pending, carbon, nowIso, nextPollMs, summary);
    }
  } else {
    ctx.log(`carbon poll skipped: ${summary.carbon.reason}`);
  }
  const sweep = await sweepOrphanContainers(ctx, client);
  summary.orphansDeleted = sweep.deleted;
  summary.orphanDeleteFailures = sweep.failed;
  return summary;
}

function recordReadings(ctx: PipelineContext, carbon: readonly RegionCarbon[]): PollSummary['readings'] {
  return carbon.map((c) => {
    const zone = zoneForRegion(ctx.carbon, c.region);
    if (c.latestGramsPerKwh !== null) {
      ctx.telemetry.metric(METRIC.carbonIntensity, c.latestGramsPerKwh, {
        region: c.region,
        zone,
        provider: ctx.carbon.name,
        source: c.forecast ? 'live-or-cache' : 'fallback',
      });
    }
    return { region: c.region, zone, gramsPerKwh: c.latestGramsPerKwh, source: c.forecast?.quality ?? null };
  });
}

async function replan(
  ctx: PipelineContext,
  client: OrchestrationClient,
  pending: PendingRetrain,
  carbon: readonly RegionCarbon[],
  nowIso: string,
  nextPollMs: number,
  summary: PollSummary,
): Promise<void> {
  const { request } = pending;
  const instanceId = retrainInstanceId(request.modelName);
  const { plan } = planFromCarbon(ctx, request, nowIso, carbon);
  await ctx.pending.recordPlan(request.modelName, request.requestId, plan, nowIso);
  const opensBeforeNextPoll = Date.parse(plan.startAt) < nextPollMs;
  if (plan.kind === 'startNow' || opensBeforeNextPoll) {
    const reason: StartTrainingEvent['reason'] = plan.kind === 'startNow' ? 'deadline' : 'window-open';
    await client.raiseEvent(instanceId, START_TRAINING_EVENT, {
      reason,
      plan,
    } satisfies StartTrainingEvent);
    await ctx.pending.markSignalled(request.modelName, request.requestId, nowIso);
    summary.signalled.push({
      modelName: request.modelName,
      reason,
      region: plan.region,
      startAt: plan.startAt,
    });
    ctx.log(`signalled ${instanceId}: ${reason}, ${plan.region} at ${plan.startAt}`);
  }
}

/**
 * Groups tagged by this app whose orchestration is no longer active and that are not serving
 * (nor waiting to be retired by a live switch). One failed delete never stops the sweep: every
 * group is tried, and the failures are reported.
 */
export async function sweepOrphanContainers(
  ctx: PipelineContext,
  client: OrchestrationClient,
): Promise<{ deleted: string[]; failed: { groupName: string; reason: string }[] }> {
  const serving = new Set((await ctx.serving.listAll()).map((s) => s.groupName));
  const deleted: string[] = [];
  const failed: { groupName: string; reason: string }[] = [];
  for (const group of await ctx.launcher.list({ tags: { app: APP_TAG } })) {
    if (serving.has(group.groupName)) continue;
    const owner = group.tags.instanceId;
    try {
      const status = owner ? await client.status(owner) : null;
      if (status && isActive(status.runtimeStatus)) continue;
      await ctx.launcher.delete(group.groupName);
      deleted.push(group.groupName);
      ctx.log(`deleted orphan container group ${group.groupName} (owner ${owner ?? 'unknown'} not running)`);
    } catch (error) {
      failed.push({ groupName: group.groupName, reason: describeError(error) });
      ctx.log(`could not delete orphan container group ${group.groupName}: ${describeError(error)}`);
    }
  }
  return { deleted, failed };
}
