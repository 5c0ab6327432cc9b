import { chooseWindow, type RegionCandidate, type WindowChoice } from '../policy/windowChoice';
import { zoneForRegion } from '../carbon/provider';
import { annualAverageFor } from '../carbon/annualAverage';
import { withCarbonDeadline } from '../carbon/deadline';
import { findAzureRegion } from '../carbon/azureRegions';
import type { Forecast } from '../carbon/types';
import type { RetrainRequest, WindowPlan } from './contracts';
import type { ParsedActivityInput } from './activityContracts';
import type { PipelineContext } from './context';
import { deployedPipeline, deployedPipelines } from '../pipelines/deployedPipelines';

/**
 * Turns a retrain request into a plan (region and start time) with the freshest carbon data the
 * fallback chain has: live provider, else the cached forecast, else annual averages. The window
 * choice itself is the pure policy in shared/policy/windowChoice.ts.
 */
export interface RegionCarbon {
  region: string;
  forecast: Forecast | null;
  latestGramsPerKwh: number | null;
}

/** Forecast and latest reading of every candidate region, fetched in parallel; failures become nulls. */
export async function gatherRegionCarbon(
  ctx: PipelineContext,
  regions: readonly string[],
): Promise<RegionCarbon[]> {
  return Promise.all(
    regions.map(async (region) => {
      const zone = zoneForRegion(ctx.carbon, region);
      const [forecast, latest] = await Promise.all([
        ctx.carbon.forecastWithTrail(zone, ctx.settings.CARBON_FORECAST_HOURS).catch(() => null),
        ctx.carbon.latestWithTrail(zone).catch(() => null),
      ]);
      // An annual average spread over the horizon is not a forecast: windows need real variation.
      const usableForecast =
        forecast && forecast.servedBy !== 'annual-average' ? { ...forecast.value, region } : null;
      return { region, forecast: usableForecast, latestGramsPerKwh: latest?.value.gramsPerKwh ?? null };
    }),
  );
}

/**
 * The regions whose carbon a plan reads: the model's own allowed regions (its declaration, the
 * settings by default) and HOME_REGION; without a model (the poller reads once for every waiting
 * request), those of every deployed pipeline.
 */
export function candidateRegions(ctx: PipelineContext, modelName?: string): string[] {
  const pipelines =
    modelName === undefined
      ? deployedPipelines(ctx.settings).pipelines
      : [deployedPipeline(ctx.settings, modelName)];
  const regions = [...new Set(pipelines.flatMap((p) => p.regions.allowed))];
  if (!regions.includes(ctx.settings.HOME_REGION)) regions.push(ctx.settings.HOME_REGION);
  return regions;
}

/**
 * The one plan computation, used by the planning activity and by the poller's re-plans: a
 * `retrainNow` request plans within the (short) "now" deadline, whatever deadline it carries. The
 * "now" deadline, the allowed regions and the residency are the request's model's (its
 * declaration; the settings when it names none).
 */
export function planFromCarbon(
  ctx: PipelineContext,
  request: RetrainRequest,
  nowIso: string,
  carbon: readonly RegionCarbon[],
): { plan: WindowPlan; choice: WindowChoice } {
  const candidates: RegionCandidate[] = carbon.map((c) => {
    const info = findAzureRegion(c.region);
    return {
      region: c.region,
      forecast: c.forecast,
      latestGramsPerKwh: c.latestGramsPerKwh,
      annualAverageGramsPerKwh: info ? annualAverageFor(info.zone, info).gramsPerKwh : null,
    };
  });
  const pipeline = deployedPipeline(ctx.settings, request.modelName);
  const nowMs = Date.parse(nowIso);
  const requestDeadlineMs =
    request.kind === 'retrainNow'
      ? Math.min(Date.parse(request.deadline), nowMs + pipeline.retrain.nowDeadlineHours * 3_600_000)
      : Date.parse(request.deadline);
  const deadlineMs = Math.max(requestDeadlineMs, nowMs);
  const choice = chooseWindow({
    candidates,
    homeRegion: ctx.settings.HOME_REGION,
    residency: pipeline.regions.residency,
    allowedRegions: pipeline.regions.allowed,
    durationMinutes: ctx.settings.TRAINING_EXPECTED_MINUTES,
    earliestStart: nowIso,
    deadline: new Date(deadlineMs).toISOString(),
  });
  const plan: WindowPlan = {
    kind: choice.kind,
    region: choice.region,
    startAt: choice.startAt,
    expectedGramsPerKwh: choice.expectedGramsPerKwh,
    reason:
      choice.kind === 'window'
        ? `lowest expected intensity before the deadline${choice.clampedToHorizon ? ' (deadline beyond the forecast horizon)' : ''}`
        : `start now: ${choice.reason} (ranked by ${choice.basis})`,
    forecastQuality: choice.kind === 'window' ? choice.forecastQuality : null,
    baselineGramsPerKwh: choice.saving?.baselineGramsPerKwh ?? null,
  };
  return { plan, choice };
}

/**
 * The `planRetrain` activity: plans, and records the plan (and any escalation) with the request.
 * Its carbon reads share the poller's overall deadline (CARBON_POLL_DEADLINE_SECONDS): a hanging
 * provider cannot hold the activity for every region × attempt × timeout, and past the deadline
 * the chain falls back to the cache or annual averages, so a plan is always made.
 */
export async function planRetrain(
  ctx: PipelineContext,
  input: ParsedActivityInput<'planRetrain'>,
): Promise<WindowPlan> {
  const { request, nowIso, escalation } = input;
  const carbon = await withCarbonDeadline(ctx.settings.CARBON_POLL_DEADLINE_SECONDS * 1000, () =>
    gatherRegionCarbon(ctx, candidateRegions(ctx, request.modelName)),
  );
  const { plan } = planFromCarbon(ctx, request, nowIso, carbon);
  await ctx.pending.recordPlan(request.modelName, request.requestId, plan, nowIso, escalation);
  ctx.log(`plan for ${request.requestId}: ${plan.region} at ${plan.startAt} (${plan.reason})`);
  return plan;
}
