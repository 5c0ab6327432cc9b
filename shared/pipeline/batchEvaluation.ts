import { createHash } from 'node:crypto';
import { BatchUnreadableError, GreenMlError, ValidationError } from '../errors';
import { parseInvoiceBatch, BatchTally } from '../invoices/parser';
import { ChunkedEvaluator, type EvaluationReport } from '../model/evaluation';
import {
  decideAfterEvaluation,
  thresholdsFromSettings,
  type RetrainDecision,
} from '../policy/retrainDecision';
import { measureInvocation } from '../sci/processUsage';
import { EVENT, METRIC } from '../telemetry/telemetry';
import type { PipelineContext } from './context';
import type { EvaluationRecord } from './evaluationRecords';
import type { RetrainRequest } from './contracts';
import { START_TRAINING_EVENT, retrainInstanceId, type StartTrainingEvent } from './contracts';
import { loadModelVersion } from './modelCache';
import { isActive, startRetrainSingleton, type OrchestrationClient } from './orchestrationClient';
import { orchestrationTimings } from './carbonPolling';
import { footprintOfUsage } from './runRecording';
import { utcDayOf } from '../sci/runRecords';

/**
 * The blob-triggered evaluator: validate -> evaluate the champion -> decide -> act -> record.
 * Exactly once per delivery (name + ETag). A batch that is not a batch goes to quarantine with
 * its reason; rejected rows are reported with their row numbers; nothing is dropped silently.
 */
export type BatchOutcome =
  | { kind: 'gone'; batchName: string }
  | { kind: 'duplicate'; batchName: string; claim: 'already-done' | 'in-progress-elsewhere' }
  | { kind: 'quarantined'; batchName: string; code: string; reason: string }
  | {
      kind: 'evaluated';
      batchName: string;
      record: EvaluationRecord;
      action: 'none' | 'started' | 'already-running' | 'merged' | 'escalated' | 'queued-next';
    };

export function correlationIdOf(batchName: string, etag: string): string {
  return createHash('sha256').update(`${batchName}\n${etag}`).digest('hex').slice(0, 16);
}

interface ScoredBatch {
  tally: BatchTally;
  report: EvaluationReport | null;
}

async function scoreBatch(
  ctx: PipelineContext,
  batchName: string,
  etag: string,
  championVersionId: string | null,
  modelName: string,
): Promise<ScoredBatch> {
  const model = championVersionId ? await loadModelVersion(ctx, modelName, championVersionId) : null;
  const evaluator = model ? new ChunkedEvaluator(model) : null;
  const tally = new BatchTally();
  const stream = await ctx.invoices.openIncoming(batchName, etag);
  for await (const record of parseInvoiceBatch(stream, { fileName: batchName })) {
    tally.add(record);
    if (record.kind === 'accepted') evaluator?.add(record.row);
  }
  const summary = tally.summary();
  return { tally, report: evaluator ? evaluator.report(summary.rejected) : null };
}

export async function processIncomingBatch(
  ctx: PipelineContext,
  client: OrchestrationClient,
  batchName: string,
): Promise<BatchOutcome> {
  const props = await ctx.invoices.incomingProperties(batchName);
  if (!props) return { kind: 'gone', batchName };
  const nowIso = ctx.now().toISOString();
  const claim = await ctx.ledger.claim(batchName, props.etag, nowIso);
  if (claim !== 'claimed') return { kind: 'duplicate', batchName, claim };
  const correlationId = correlationIdOf(batchName, props.etag);
  const modelName = ctx.settings.MODEL_NAME;
  try {
    const champion = await ctx.registry.getChampion(modelName);
    const championVersionId = champion?.pointer.versionId ?? null;
    const measured = await measureInvocation(async () => {
      try {
        return {
          ok: true as const,
          scored: await scoreBatch(ctx, batchName, props.etag, championVersionId, modelName),
        };
      } catch (error) {
        if (error instanceof BatchUnreadableError || error instanceof ValidationError) {
          return { ok: false as const, error };
        }
        throw error;
      }
    });
    if (!measured.result.ok) {
      return await quarantine(ctx, batchName, props.etag, measured.result.error, correlationId);
    }
    const { tally, report } = measured.result.scored;
    const summary = tally.summary();
    if (summary.accepted === 0) {
      const error = new ValidationError(`No valid invoice rows: all ${summary.rejected} rows were rejected`);
      await ctx.invoices.writeReport(batchName, { batchName, correlationId, summary });
      return await quarantine(ctx, batchName, props.etag, error, correlationId);
    }
    // Accepted before deciding: a retrain started below must find this batch in its training window.
    await ctx.invoices.accept(batchName, props.etag);

    const baseline = championVersionId
      ? (await ctx.registry.getVersionMetadata(modelName, championVersionId)).holdoutMetrics.accuracy
      : null;
    const decision: RetrainDecision = decideAfterEvaluation(
      {
        championBaselineAccuracy: baseline,
        batchAccuracy: report?.accuracy ?? null,
        rowsAccepted: summary.accepted,
        evaluatedAt: nowIso,
      },
      thresholdsFromSettings(ctx.settings),
    );
    const action = await act(ctx, client, decision, batchName, correlationId, nowIso);

    const unseen = report?.featureMix.unseenShare;
    const record: EvaluationRecord = {
      modelName,
      batchName,
      etag: props.etag,
      correlationId,
      evaluatedAt: nowIso,
      championVersionId,
      championBaselineAccuracy: baseline,
      accuracy: report?.accuracy ?? null,
      macroF1: report?.macroF1 ?? null,
      rowsRead: summary.rowsRead,
      rowsAccepted: summary.accepted,
      rowsRejected: summary.rejected,
      drift: {
        unseenSupplierShare: unseen?.supplierId ?? null,
        unseenCountryShare: unseen?.supplierCountry ?? null,
        countryMixDistance: null,
      },
      decision: {
        kind: decision.kind,
        reason: decision.reason,
        relativeDrop: decision.relativeDrop,
        deadline: decision.kind === 'none' ? null : decision.deadline,
      },
      action,
      cpuSeconds: measured.cpuSeconds,
      wallSeconds: measured.wallSeconds,
    };
    await ctx.invoices.writeReport(batchName, {
      ...record,
      perClass: report?.perClass ?? null,
      confusion: report?.confusion ?? null,
      rejections: summary.rejections,
      rejectionsTruncated: summary.rejectionsTruncated,
    });
    await ctx.evaluations.save(record);
    // The evaluator's own footprint, per 1,000 invoices evaluated, goes into the daily aggregate.
    const evaluation = await footprintOfUsage(ctx, {
      stage: 'evaluate',
      region: ctx.settings.HOME_REGION,
      startedAt: nowIso,
      endedAt: new Date(Date.parse(nowIso) + Math.max(1, measured.wallSeconds) * 1000).toISOString(),
      cpuCores: 1,
      memoryGb: 2,
      cpuSeconds: measured.cpuSeconds,
      peakMemoryBytes: null,
      resourceSource: 'function-cpu',
      functionalUnits: summary.rowsRead,
    });
    await ctx.runRecords.addToDailyAggregate(
      modelName,
      utcDayOf(nowIso),
      {
        energyKwh: evaluation.energy.energyKwh,
        operationalGrams: evaluation.operationalGrams,
        embodiedGrams: evaluation.embodiedGrams,
        evaluations: 1,
      },
      { operationId: `evaluation:${correlationId}` },
    );
    const attributes = {
      batch: batchName,
      correlationId,
      model: modelName,
      modelVersion: championVersionId ?? 'none',
    };
    if (report) ctx.telemetry.metric(METRIC.accuracy, report.accuracy, attributes);
    ctx.telemetry.metric(METRIC.energyKwh, evaluation.energy.energyKwh, { ...attributes, stage: 'evaluate' });
    if (evaluation.sciGramsPerUnit !== null) {
      ctx.telemetry.metric(METRIC.sci, evaluation.sciGramsPerUnit, {
        ...attributes,
        stage: 'evaluate',
        region: ctx.settings.HOME_REGION,
        functionalUnit: 'invoices-1000',
      });
    }
    ctx.telemetry.metric(METRIC.functionCpuSeconds, measured.cpuSeconds, {
      ...attributes,
      function: 'invoiceBatchEvaluator',
    });
    ctx.telemetry.event(EVENT.retrainDecision, {
      ...attributes,
      kind: decision.kind,
      reason: decision.reason,
      action,
      relativeDrop: decision.relativeDrop ?? 0,
    });
    await ctx.ledger.finish(
      batchName,
      props.etag,
      `evaluated:${decision.kind}:${action}`,
      ctx.now().toISOString(),
    );
    ctx.log(
      `${batchName}: ${summary.accepted} rows accepted, ${summary.rejected} rejected; ` +
        `accuracy ${report ? (report.accuracy * 100).toFixed(1) + ' %' : 'n/a'}; ${decision.kind} (${decision.reason}) -> ${action}`,
    );
    return { kind: 'evaluated', batchName, record, action };
  } catch (error) {
    // A transient failure: let the trigger's retry deliver it again instead of marking it handled.
    await ctx.ledger.release(batchName, props.etag);
    throw error;
  }
}

async function quarantine(
  ctx: PipelineContext,
  batchName: string,
  etag: string,
  error: GreenMlError,
  correlationId: string,
): Promise<BatchOutcome> {
  await ctx.invoices.quarantine(batchName, etag, {
    code: error.code,
    message: error.message,
    details: error.details,
  });
  ctx.telemetry.event(EVENT.batchQuarantined, {
    batch: batchName,
    correlationId,
    code: error.code,
    reason: error.message,
  });
  await ctx.ledger.finish(batchName, etag, `quarantined:${error.code}`, ctx.now().toISOString());
  ctx.log(`${batchName}: quarantined (${error.code}): ${error.message}`);
  return { kind: 'quarantined', batchName, code: error.code, reason: error.message };
}

async function act(
  ctx: PipelineContext,
  client: OrchestrationClient,
  decision: RetrainDecision,
  batchName: string,
  correlationId: string,
  nowIso: string,
): Promise<Extract<BatchOutcome, { kind: 'evaluated' }>['action']> {
  if (decision.kind === 'none') return 'none';
  const modelName = ctx.settings.MODEL_NAME;
  const request: RetrainRequest = {
    requestId: `${nowIso.replace(/[-:.]/g, '')}-${correlationId}`,
    modelName,
    kind: decision.kind,
    reason: decision.reason,
    requestedAt: nowIso,
    deadline: decision.deadline,
    triggeringBatch: batchName,
    relativeDrop: decision.relativeDrop,
  };
  const merge = await ctx.pending.submit(request, nowIso);
  const instanceId = retrainInstanceId(modelName);
  if (merge.kind === 'queued-next') return 'queued-next';
  if (merge.kind === 'merged') {
    const status = await client.status(instanceId);
    if (merge.escalated && status && isActive(status.runtimeStatus)) {
      await client.raiseEvent(instanceId, START_TRAINING_EVENT, {
        reason: 'escalated',
        plan: null,
      } satisfies StartTrainingEvent);
      return 'escalated';
    }
    if (status && isActive(status.runtimeStatus)) return 'merged';
  }
  const started = await startRetrainSingleton(client, {
    request: merge.pending.request,
    timings: orchestrationTimings(ctx),
    generation: 0,
  });
  return started;
}
