import type { PipelineContext } from '../pipeline/context';
import { footprintOfUsage } from '../pipeline/runRecording';
import { servingPeriodStage } from '../pipeline/servingActivities';
import type { StageFootprint } from '../sci/sci';
import { describePlanRecord } from '../serving/servingPlanRecord';

/**
 * Serving emissions per plan, from the pipeline's own records: every retired API's serving period
 * (its serve-stage footprint, recorded when it was retired) and the period of the API serving now
 * up to the report's time, each against today's always-on API over the same period.
 */
export interface ServingPeriodLine {
  readonly groupName: string;
  readonly plan: string;
  readonly fallback: boolean;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly open: boolean;
  readonly replicaHours: number;
  readonly replicaSource: string;
  /** Why measured replica time (Azure Monitor) could not be used and the load hours were counted instead. */
  readonly replicaFallbackReason: string | null;
  readonly predictions: number;
  readonly coldStarts: number;
  readonly coldStartMedianMs: number | null;
  readonly grams: number;
  readonly gramsPer1000Predictions: number | null;
  readonly alwaysOnGrams: number;
}

export interface ServingSummary {
  readonly periods: ServingPeriodLine[];
  readonly totalGrams: number;
  readonly alwaysOnGrams: number;
  /** 1 − planned / always-on; null without any serving period. */
  readonly saving: number | null;
  readonly predictions: number;
  readonly coldStarts: number;
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function periodLine(footprint: StageFootprint, groupName: string, open: boolean): ServingPeriodLine {
  const s = footprint.serving;
  return {
    groupName,
    plan: s?.plan ? describePlanRecord(s.plan) : 'unplanned (always on)',
    fallback: s?.plan?.kind === 'always-on-fallback',
    startedAt: footprint.startedAt,
    endedAt: footprint.endedAt,
    open,
    replicaHours: (s?.replicaSeconds ?? 0) / 3600,
    replicaSource: s?.replicaSource ?? 'always-on',
    replicaFallbackReason: s?.replicaFallbackReason ?? null,
    predictions: s?.predictions ?? footprint.functionalUnit.count,
    coldStarts: s?.coldStarts ?? 0,
    coldStartMedianMs: median(s?.coldStartMs ?? []),
    grams: footprint.totalGrams,
    gramsPer1000Predictions: footprint.sciGramsPerUnit,
    alwaysOnGrams: s?.alwaysOnGrams ?? footprint.totalGrams,
  };
}

export function summarisePeriods(periods: ServingPeriodLine[]): ServingSummary {
  const totalGrams = periods.reduce((sum, p) => sum + p.grams, 0);
  const alwaysOnGrams = periods.reduce((sum, p) => sum + p.alwaysOnGrams, 0);
  return {
    periods,
    totalGrams,
    alwaysOnGrams,
    saving: alwaysOnGrams > 0 ? 1 - totalGrams / alwaysOnGrams : null,
    predictions: periods.reduce((sum, p) => sum + p.predictions, 0),
    coldStarts: periods.reduce((sum, p) => sum + p.coldStarts, 0),
  };
}

/** Recorded periods plus the serving API's open one (read without disturbing it), for one model. */
export async function servingSummary(
  ctx: PipelineContext,
  model: string = ctx.settings.MODEL_NAME,
): Promise<ServingSummary> {
  const recorded = await ctx.servingLoad.periods(model);
  const lines = recorded.map((f, i) => periodLine(f, `period-${i + 1}`, false));
  const current = await ctx.serving.get(model);
  if (current) {
    const usage = await ctx.launcher.usage(current.groupName).catch(() => null);
    const stage = await servingPeriodStage(ctx, model, current, ctx.now().toISOString(), usage);
    lines.push(periodLine(await footprintOfUsage(ctx, stage), current.groupName, true));
  }
  return summarisePeriods(lines);
}

export function formatServing(s: ServingSummary): string[] {
  const lines = [
    'Serving (model API periods, from the recorded serve stages; load: seeded synthetic business-hours calls)',
  ];
  lines.push(
    '  from (UTC)        to                plan                                                                 replica-h  predictions  cold starts (median ms)  gCO2e   g/1k pred  always-on gCO2e',
  );
  for (const p of s.periods) {
    const cold = p.coldStarts > 0 ? `${p.coldStarts} (${p.coldStartMedianMs?.toFixed(0) ?? '-'})` : '0';
    lines.push(
      `  ${p.startedAt.slice(0, 16).replace('T', ' ')}  ${p.open ? 'now (serving)   ' : p.endedAt.slice(0, 16).replace('T', ' ')}  ${p.plan.slice(0, 68).padEnd(68)} ${p.replicaHours.toFixed(1).padStart(9)}  ${String(p.predictions).padStart(11)}  ${cold.padStart(23)}  ${p.grams.toFixed(2).padStart(6)}  ${(p.gramsPer1000Predictions === null ? '-' : p.gramsPer1000Predictions.toFixed(3)).padStart(9)}  ${p.alwaysOnGrams.toFixed(1).padStart(15)}`,
    );
    if (p.fallback) lines.push(`    ${p.plan.slice(Math.max(0, p.plan.indexOf('(fallback')))}`);
    if (p.replicaFallbackReason !== null) {
      lines.push(`    replica-h estimated from load hours: ${p.replicaFallbackReason}`);
    }
  }
  if (s.saving !== null) {
    lines.push(
      `  serving as planned: ${s.totalGrams.toFixed(2)} gCO2e for ${s.predictions} predictions; always-on today's API: ${s.alwaysOnGrams.toFixed(1)} gCO2e (saving ${(s.saving * 100).toFixed(1)} %), ${s.coldStarts} cold starts`,
    );
  }
  return lines;
}
