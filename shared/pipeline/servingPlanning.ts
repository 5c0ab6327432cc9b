import { annualAverageFor } from '../carbon/annualAverage';
import { findAzureRegion } from '../carbon/azureRegions';
import { containerAppsSizeFor } from '../containers/containerAppsModelApiLauncher';
import { parseInvoiceBatch } from '../invoices/parser';
import { isHoldoutRow } from '../model/training';
import { measuredCapacityProfile } from '../serving/capacityProfile';
import { planServing } from '../serving/servingPlanner';
import { toPlanRecord, type ServingPlanRecord } from '../serving/servingPlanRecord';
import { TreeCountEvaluator, type TreeCountAccuracy } from '../serving/treeCountAccuracy';
import type { ParsedActivityInput } from './activityContracts';
import type { PipelineContext } from './context';
import { loadModel } from './modelCache';
import { deployedPipeline } from '../pipelines/deployedPipelines';
import { candidateRegions, gatherRegionCarbon, type RegionCarbon } from './planning';

/**
 * The `planModelServing` activity: gathers the serving planner's real inputs (allowed regions and
 * residency, HOME_REGION and the RTT budget from settings; the carbon forecasts the poller keeps;
 * the measured capacity profile; the load the model API reported; the version's held-out accuracy
 * by tree count) and returns the plan. The plan is the activity's output, so replay never plans
 * again: the orchestrator acts on exactly the plan in its history.
 */
const PLAN_HORIZON_HOURS = 24;

export async function planModelServing(
  ctx: PipelineContext,
  input: ParsedActivityInput<'planModelServing'>,
): Promise<ServingPlanRecord> {
  const s = ctx.settings;
  // The model's own regions, residency and SLO (its declaration; the settings when it names none).
  const pipeline = deployedPipeline(s, input.modelName);
  const [treeAccuracy, load, carbon] = await Promise.all([
    recordedTreeAccuracy(ctx, input.modelName, input.versionId),
    ctx.servingLoad.history(input.modelName),
    gatherRegionCarbon(ctx, candidateRegions(ctx, input.modelName)),
  ]);
  const plan = planServing({
    now: input.nowIso,
    host: s.MODEL_API_HOST,
    homeRegion: s.HOME_REGION,
    allowedRegions: pipeline.regions.allowed,
    residency: pipeline.regions.residency,
    latencyBudgetMs: s.SERVING_LATENCY_BUDGET_MS,
    p99SloMs: pipeline.serving.p99SloMs,
    maxAccuracyLoss: s.SERVING_MAX_ACCURACY_LOSS,
    intensityGramsPerKwh: expectedIntensity(carbon, input.nowIso),
    load: load.length > 0 ? load : null,
    capacity: measuredCapacityProfile(),
    treeAccuracy,
    // The fallback keeps today's size, as the host offers it (Container Apps pairs 2 GiB with each vCPU).
    fallbackSize:
      s.MODEL_API_HOST === 'containerapps'
        ? containerAppsSizeFor({ cpuCores: s.MODEL_API_CPU_CORES, memoryGb: s.MODEL_API_MEMORY_GB })
        : { cpuCores: s.MODEL_API_CPU_CORES, memoryGb: s.MODEL_API_MEMORY_GB },
  });
  const record = toPlanRecord(plan, input.nowIso);
  ctx.log(`serving planned for ${input.versionId}: ${record.reasons.join('; ')}`);
  return record;
}

/**
 * Mean forecast intensity over the next day per region (what the plan will run through), else the
 * latest reading, else the annual average: a region without any figure cannot be compared.
 */
export function expectedIntensity(carbon: readonly RegionCarbon[], nowIso: string): Record<string, number> {
  const fromMs = Date.parse(nowIso);
  const toMs = fromMs + PLAN_HORIZON_HOURS * 3_600_000;
  const out: Record<string, number> = {};
  for (const c of carbon) {
    const points = (c.forecast?.points ?? []).filter((p) => {
      const startMs = Date.parse(p.startsAt);
      return startMs + p.durationMinutes * 60_000 > fromMs && startMs < toMs;
    });
    const region = c.region.toLowerCase();
    if (points.length > 0) {
      out[region] = points.reduce((sum, p) => sum + p.gramsPerKwh, 0) / points.length;
    } else if (c.latestGramsPerKwh !== null) {
      out[region] = c.latestGramsPerKwh;
    } else {
      const info = findAzureRegion(c.region);
      if (info) out[region] = annualAverageFor(info.zone, info).gramsPerKwh;
    }
  }
  return out;
}

/** The version's accuracy by tree count: recorded once per version, measured on first use. */
export async function recordedTreeAccuracy(
  ctx: PipelineContext,
  modelName: string,
  versionId: string,
): Promise<TreeCountAccuracy | null> {
  const recorded = await ctx.servingLoad.treeAccuracy(modelName, versionId);
  if (recorded) return recorded;
  const measured = await measureTreeAccuracy(ctx, modelName, versionId);
  await ctx.servingLoad.saveTreeAccuracy(modelName, versionId, measured);
  return measured;
}

/** Held-out accuracy of the version's first k trees, on the held-out rows of its own data window. */
export async function measureTreeAccuracy(
  ctx: PipelineContext,
  modelName: string,
  versionId: string,
): Promise<TreeCountAccuracy> {
  const model = await loadModel(ctx.registry, modelName, versionId);
  const evaluator = new TreeCountEvaluator(model);
  for (const batch of model.metadata.dataWindow) {
    const stream = await ctx.invoices.openAccepted(batch);
    for await (const record of parseInvoiceBatch(stream, { fileName: batch })) {
      if (record.kind === 'accepted' && isHoldoutRow(record.row.invoiceId)) evaluator.add(record.row);
    }
  }
  return evaluator.result();
}
