import { deployedPipelines } from '../pipelines/deployedPipelines';
import type { PipelineContext } from './context';

/**
 * What the status endpoint shows, one entry per declared model (each has its own champion, serving
 * API, requests, decisions and runs; one model's state never hides another's).
 */
export async function statusReport(
  ctx: PipelineContext,
  options: { decisions?: number; runs?: number } = {},
) {
  const models = await Promise.all(
    deployedPipelines(ctx.settings).pipelines.map((p) => modelStatus(ctx, p.name, options)),
  );
  return { at: ctx.now().toISOString(), models };
}

export type ModelStatus = Awaited<ReturnType<typeof modelStatus>>;

/** One model's champion, serving API, pending requests, recent decisions and runs. */
export async function modelStatus(
  ctx: PipelineContext,
  model: string,
  options: { decisions?: number; runs?: number } = {},
) {
  const [champion, serving, pending, next, evaluations, runs] = await Promise.all([
    ctx.registry.getChampion(model),
    ctx.serving.get(model),
    ctx.pending.get(model, 'current'),
    ctx.pending.get(model, 'next'),
    ctx.evaluations.list(model, { limit: options.decisions ?? 10 }),
    ctx.runRecords.listRuns(model, { limit: options.runs ?? 5 }),
  ]);
  return {
    model,
    champion: champion?.pointer ?? null,
    serving: serving
      ? {
          groupName: serving.groupName,
          endpoint: serving.endpoint,
          versionId: serving.versionId,
          since: serving.since,
        }
      : null,
    pending: [pending, next]
      .filter((p) => p !== null)
      .map((p) => ({
        request: p.request,
        state: p.state,
        latestPlan: p.latestPlan,
        signalledAt: p.signalledAt ?? null,
      })),
    lastDecisions: evaluations.map((e) => ({
      batch: e.batchName,
      evaluatedAt: e.evaluatedAt,
      accuracy: e.accuracy,
      rowsAccepted: e.rowsAccepted,
      rowsRejected: e.rowsRejected,
      decision: e.decision,
      action: e.action,
    })),
    lastRuns: runs.map((r) => ({
      runId: r.runId,
      outcome: r.outcome,
      region: r.region,
      startedAt: r.startedAt,
      endedAt: r.endedAt,
      reason: r.decision.reason,
      challengerAccuracy: r.challengerAccuracy,
      championAccuracy: r.championAccuracy,
      energyKwh: r.totals.energyKwh,
      totalGrams: r.totals.totalGrams,
      sciGramsPerRetrain: r.totals.sciGramsPerUnit,
      stages: r.stages.map((s) => ({
        stage: s.stage,
        region: s.region,
        totalGrams: s.totalGrams,
        sciGramsPerUnit: s.sciGramsPerUnit,
      })),
    })),
  };
}
