import { zoneForRegion } from '../carbon/provider';
import type { IntensityPoint } from '../carbon/types';
import {
  aggregateRun,
  coefficientsFromSettings,
  footprintOfStage,
  functionalUnitOf,
  type FunctionalUnitKind,
  type StageFootprint,
  type StageIntensityInput,
} from '../sci/sci';
import { utcDayOf, type RunRecord } from '../sci/runRecords';
import { EVENT, METRIC } from '../telemetry/telemetry';
import type { RunSummary, StageUsage } from './contracts';
import type { PipelineContext } from './context';

/**
 * Turns measured stage usage into energy, operational and embodied carbon and SCI, with the grid
 * intensity of the stage's region over exactly the time it ran (hourly points from the carbon
 * chain; the latest reading when no series is available), and records the run.
 */
const UNIT_OF_STAGE: Record<string, FunctionalUnitKind> = {
  train: 'retrain',
  compare: 'retrain',
  deploy: 'retrain',
  plan: 'retrain',
  serve: 'predictions-1000',
  evaluate: 'invoices-1000',
};

async function intensityFor(
  ctx: PipelineContext,
  region: string,
  fromIso: string,
  toIso: string,
): Promise<StageIntensityInput> {
  const zone = zoneForRegion(ctx.carbon, region);
  // Whole hours around the stage, so a 5-minute stage still finds the point it falls in.
  const from = new Date(Math.floor(Date.parse(fromIso) / 3_600_000) * 3_600_000).toISOString();
  const to = new Date(Math.ceil(Date.parse(toIso) / 3_600_000) * 3_600_000 + 3_600_000).toISOString();
  const series: IntensityPoint[] = await ctx.carbon
    .historyWithTrail(zone, from, to)
    .then((r) => [...r.value])
    .catch(() => []);
  if (series.length > 0) return { series };
  const latest = await ctx.carbon.latestWithTrail(zone);
  return {
    gramsPerKwh: latest.value.gramsPerKwh,
    provider: latest.value.provider,
    source: latest.value.source,
    signal: latest.value.signal,
  };
}

export async function footprintOfUsage(ctx: PipelineContext, usage: StageUsage): Promise<StageFootprint> {
  const kind = UNIT_OF_STAGE[usage.stage] ?? 'retrain';
  const stage = {
    stage: usage.stage,
    region: usage.region,
    startedAt: usage.startedAt,
    endedAt:
      usage.endedAt > usage.startedAt
        ? usage.endedAt
        : new Date(Date.parse(usage.startedAt) + 1000).toISOString(),
    cpuCores: usage.cpuCores,
    memoryGb: usage.memoryGb,
    cpuSeconds: usage.cpuSeconds,
    resourceSource: usage.resourceSource,
    functionalUnit: functionalUnitOf(kind, usage.functionalUnits),
  };
  const coefficients = coefficientsFromSettings(ctx.settings);
  const intensity = await intensityFor(ctx, usage.region, usage.startedAt, usage.endedAt);
  if (!usage.serving) return footprintOfStage({ ...stage, intensity }, coefficients);
  // The counterfactual the saving is shown against: today's API, always on in the home region,
  // doing the same work over the same period.
  const home = ctx.settings.HOME_REGION;
  const alwaysOn = footprintOfStage(
    {
      ...stage,
      region: home,
      cpuCores: ctx.settings.MODEL_API_CPU_CORES,
      memoryGb: ctx.settings.MODEL_API_MEMORY_GB,
      intensity:
        home === usage.region ? intensity : await intensityFor(ctx, home, usage.startedAt, usage.endedAt),
    },
    coefficients,
  );
  return footprintOfStage(
    {
      ...stage,
      intensity,
      reservedSeconds: usage.serving.replicaSeconds,
      serving: { ...usage.serving, alwaysOnGrams: alwaysOn.totalGrams },
    },
    coefficients,
  );
}

/** The `recordRun` activity: stage footprints, the run record, the daily aggregate and telemetry. */
export async function recordRun(
  ctx: PipelineContext,
  summary: RunSummary,
): Promise<{ runId: string; totalGrams: number | null }> {
  const stages = await Promise.all(summary.stages.map((usage) => footprintOfUsage(ctx, usage)));
  const totals = aggregateRun(stages, functionalUnitOf('retrain', 1));
  const train = summary.stages.find((s) => s.stage === 'train');
  const record: RunRecord = {
    modelName: summary.modelName,
    runId: summary.runId,
    decision: {
      kind: summary.request.kind,
      reason: summary.request.reason,
      requestedAt: summary.request.requestedAt,
      deadline: summary.request.deadline,
      triggeringBatch: summary.request.triggeringBatch,
      relativeDrop: summary.request.relativeDrop,
    },
    plan: summary.plan
      ? {
          kind: summary.plan.kind,
          region: summary.plan.region,
          startAt: summary.plan.startAt,
          expectedGramsPerKwh: summary.plan.expectedGramsPerKwh,
          baselineGramsPerKwh: summary.plan.baselineGramsPerKwh,
          reason: summary.plan.reason,
        }
      : null,
    region: train?.region ?? summary.plan?.region ?? null,
    startedAt: summary.startedAt,
    endedAt: summary.endedAt,
    outcome: summary.outcome,
    detail: summary.detail,
    championVersionId: summary.comparison?.championVersionId ?? null,
    challengerVersionId: summary.challengerVersionId,
    championAccuracy: summary.comparison?.championAccuracy ?? null,
    challengerAccuracy: summary.comparison?.challengerAccuracy ?? null,
    stages,
    totals,
  };
  await ctx.runRecords.saveRun(record);
  await ctx.runRecords.addToDailyAggregate(
    summary.modelName,
    utcDayOf(summary.endedAt),
    {
      energyKwh: totals.energyKwh,
      operationalGrams: totals.operationalGrams,
      embodiedGrams: totals.embodiedGrams,
      retrains: 1,
    },
    { operationId: `run:${summary.runId}` },
  );
  for (const stage of stages) {
    const attributes = {
      stage: stage.stage,
      region: stage.region,
      runId: summary.runId,
      model: summary.modelName,
      functionalUnit: stage.functionalUnit.kind,
    };
    ctx.telemetry.metric(METRIC.energyKwh, stage.energy.energyKwh, attributes);
    if (stage.sciGramsPerUnit !== null) ctx.telemetry.metric(METRIC.sci, stage.sciGramsPerUnit, attributes);
  }
  ctx.telemetry.event(EVENT.retrainRun, {
    runId: summary.runId,
    model: summary.modelName,
    outcome: summary.outcome,
    reason: summary.request.reason,
    region: record.region ?? 'none',
    totalGrams: totals.totalGrams,
    // The request id ends with the correlation id of the upload that caused it (batchEvaluation.ts).
    correlationId: summary.request.requestId.split('-').at(-1) ?? 'none',
    batch: summary.request.triggeringBatch ?? 'none',
  });
  if (summary.outcome === 'promoted' && summary.challengerVersionId) {
    ctx.telemetry.event(EVENT.modelPromoted, {
      model: summary.modelName,
      versionId: summary.challengerVersionId,
    });
  }
  ctx.log(
    `run ${summary.runId}: ${summary.outcome}; ${totals.energyKwh.toExponential(3)} kWh, ${totals.totalGrams.toFixed(3)} gCO2e`,
  );
  return { runId: summary.runId, totalGrams: totals.totalGrams };
}
