import { createHash } from 'node:crypto';
import { BatchUnreadableError, ValidationError, describeError } from '../errors';
import { parseInvoiceBatch, BatchTally } from '../invoices/parser';
import { ChunkedEvaluator, type EvaluationReport } from '../model/evaluation';
import {
  decideAfterEvaluation,
  thresholdsFromSettings,
  type RetrainDecision,
} from '../policy/retrainDecision';
import { unseenLabelShare } from '../policy/newLabels';
import { measureInvocation } from '../sci/processUsage';
import { EVENT, METRIC } from '../telemetry/telemetry';
import { parseWith } from '../validation';
import type { PipelineContext } from './context';
import { EVALUATION_RECORD_SCHEMA, type EvaluationRecord } from './evaluationRecords';
import type { RetrainRequest } from './contracts';
import { START_TRAINING_EVENT, retrainInstanceId, type StartTrainingEvent } from './contracts';
import { loadModelVersion } from './modelCache';
import { isActive, startRetrainSingleton, type OrchestrationClient } from './orchestrationClient';
import { orchestrationTimings } from './carbonPolling';
import { footprintOfUsage } from './runRecording';
import { utcDayOf } from '../sci/runRecords';
import { classifyBatchName } from './batchNames';
import type { BatchClaim, BatchJournal, Scored } from './batchLedger';

/**
 * The batch evaluator: validate -> evaluate the champion -> decide -> act -> record, as a journal
 * of idempotent steps (score and report, move, pending request, orchestration, evaluation record
 * and daily count, finish) kept in the delivery's ledger claim. A worker that dies or a call that
 * fails after any step leaves a claim that the next delivery of the same batch, or the incoming
 * sweep once the claim's lease has run out, resumes from the step it reached. Work in progress is
 * never answered as a duplicate: only a finished delivery is.
 *
 * The batch moves to accepted/ before the decision is acted on, so a retrain started by it finds the
 * batch in its window; the decision itself is fixed in the journal when the batch is scored, so a
 * resumed attempt acts on the same decision even if the champion changed in between.
 */
export type EvaluatedAction = 'none' | 'started' | 'already-running' | 'merged' | 'escalated' | 'queued-next';

export type BatchOutcome =
  | { kind: 'gone'; batchName: string }
  | { kind: 'duplicate'; batchName: string; claim: 'already-done' }
  | { kind: 'in-progress'; batchName: string; leaseUntil: string }
  | { kind: 'superseded'; batchName: string; reason: string }
  | { kind: 'ignored'; batchName: string; reason: string }
  | { kind: 'quarantined'; batchName: string; code: string; reason: string; quarantinedAs: string }
  | { kind: 'evaluated'; batchName: string; record: EvaluationRecord; action: EvaluatedAction };

const DRAFT_SCHEMA = EVALUATION_RECORD_SCHEMA.omit({ action: true });
type EvaluationDraft = Omit<EvaluationRecord, 'action'>;

export function correlationIdOf(batchName: string, etag: string): string {
  return createHash('sha256').update(`${batchName}\n${etag}`).digest('hex').slice(0, 16);
}

/**
 * One delivery of `incoming/{batchName}`, from a blob event, the local host or the sweep. When the
 * blob has already left incoming/, unfinished claims on the name are resumed from their journal.
 */
export async function processIncomingBatch(
  ctx: PipelineContext,
  client: OrchestrationClient,
  batchName: string,
): Promise<BatchOutcome> {
  const verdict = classifyBatchName(batchName);
  if (verdict.kind === 'illegal' && verdict.unaddressable) {
    // Clients resolve dot segments, so any call would address a different blob: never touch it.
    ctx.log(`${JSON.stringify(batchName)}: ignored: ${verdict.reason}`);
    return { kind: 'ignored', batchName, reason: verdict.reason };
  }
  const props = await ctx.invoices.incomingProperties(batchName);
  if (props) return processDelivery(ctx, client, batchName, props.etag);
  const unfinished = await ctx.ledger.unfinishedFor(batchName);
  let outcome: BatchOutcome = { kind: 'gone', batchName };
  for (const delivery of unfinished) outcome = await processDelivery(ctx, client, batchName, delivery.etag);
  return outcome;
}

/** One delivery keyed on name + ETag: claim it (or resume its claim) and run the remaining steps. */
export async function processDelivery(
  ctx: PipelineContext,
  client: OrchestrationClient,
  batchName: string,
  etag: string,
): Promise<BatchOutcome> {
  const claimed = await ctx.ledger.claim(batchName, etag, ctx.now().toISOString());
  if (claimed.kind === 'busy') return { kind: 'in-progress', batchName, leaseUntil: claimed.leaseUntil };
  if (claimed.kind === 'done') {
    await finishLeftoverMove(ctx, batchName, etag, claimed.journal);
    return { kind: 'duplicate', batchName, claim: 'already-done' };
  }
  const claim = claimed.claim;
  try {
    return await runSteps(ctx, client, claim);
  } catch (error) {
    await ctx.ledger.release(claim, ctx.now().toISOString());
    throw error;
  }
}

/** A finished delivery whose source delete was lost (it failed as if replaced) is deleted now. */
async function finishLeftoverMove(
  ctx: PipelineContext,
  batchName: string,
  etag: string,
  journal: BatchJournal | null,
): Promise<void> {
  const scored = journal?.scored;
  if (!scored || !journal.moved || scored.kind === 'superseded') return;
  const props = await ctx.invoices.incomingProperties(batchName);
  if (props?.etag !== etag) return;
  if (scored.kind === 'evaluated') await ctx.invoices.accept(batchName, etag);
  else {
    await ctx.invoices.quarantine(
      batchName,
      etag,
      { code: scored.code, message: scored.message, details: scored.details },
      scored.targetName,
      journal.evaluatedAt,
    );
  }
}

async function runSteps(
  ctx: PipelineContext,
  client: OrchestrationClient,
  claim: BatchClaim,
): Promise<BatchOutcome> {
  const { name: batchName, etag } = claim;
  const journal = claim.journal;
  const save = () => ctx.ledger.save(claim, ctx.now().toISOString());
  if (!journal.scored) {
    journal.scored = await score(ctx, batchName, etag, journal.evaluatedAt);
    await save();
  }
  const scored = journal.scored;
  if (scored.kind === 'superseded') return finishSuperseded(ctx, claim, scored.reason);
  if (scored.kind === 'quarantine') {
    if (!journal.moved) {
      const moved = await ctx.invoices.quarantine(
        batchName,
        etag,
        { code: scored.code, message: scored.message, details: scored.details },
        scored.targetName,
        journal.evaluatedAt,
      );
      if (moved === 'superseded') return finishSuperseded(ctx, claim, 'changed before it was quarantined');
      journal.moved = true;
      await save();
    }
    await ctx.ledger.finish(claim, `quarantined:${scored.code}`, ctx.now().toISOString());
    ctx.telemetry.event(EVENT.batchQuarantined, {
      batch: batchName,
      correlationId: correlationIdOf(batchName, etag),
      code: scored.code,
      reason: scored.message,
    });
    ctx.log(`${JSON.stringify(batchName)}: quarantined (${scored.code}): ${scored.message}`);
    return {
      kind: 'quarantined',
      batchName,
      code: scored.code,
      reason: scored.message,
      quarantinedAs: scored.targetName,
    };
  }

  const draft: EvaluationDraft = parseWith(DRAFT_SCHEMA, scored.draft, 'journalled evaluation');
  if (!journal.moved) {
    // Accepted before acting: a retrain started below must find this batch in its training window.
    if ((await ctx.invoices.accept(batchName, etag)) === 'superseded') {
      return finishSuperseded(ctx, claim, 'changed before it was accepted');
    }
    journal.moved = true;
    await save();
  }
  if (!journal.action) {
    journal.action = await act(ctx, client, claim, draft);
    await save();
  }
  const action = journal.action as EvaluatedAction;
  const record: EvaluationRecord = { ...draft, action };
  if (!journal.recorded) {
    await record_(ctx, record);
    journal.recorded = true;
    await save();
  }
  await ctx.ledger.finish(claim, `evaluated:${draft.decision.kind}:${action}`, ctx.now().toISOString());
  // Telemetry after the ledger says done, so a resumed delivery never reports a batch twice.
  await emitTelemetry(ctx, record);
  ctx.log(
    `${JSON.stringify(batchName)}: ${draft.rowsAccepted} rows accepted, ${draft.rowsRejected} rejected; ` +
      `accuracy ${draft.accuracy === null ? 'n/a' : (draft.accuracy * 100).toFixed(1) + ' %'}; ` +
      `${draft.decision.kind} (${draft.decision.reason}) -> ${action}`,
  );
  return { kind: 'evaluated', batchName, record, action };
}

async function finishSuperseded(
  ctx: PipelineContext,
  claim: BatchClaim,
  reason: string,
): Promise<BatchOutcome> {
  await ctx.ledger.finish(claim, `superseded:${reason}`, ctx.now().toISOString());
  ctx.log(`${JSON.stringify(claim.name)}: ${reason}; a newer upload is its own delivery`);
  return { kind: 'superseded', batchName: claim.name, reason };
}

interface ScoredBatch {
  tally: BatchTally;
  report: EvaluationReport | null;
  /** Share of accepted rows labelled with a class the champion does not know; null without a champion. */
  unseenLabelShare: number | null;
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
  const report = evaluator ? evaluator.report(summary.rejected) : null;
  return {
    tally,
    report,
    unseenLabelShare: report && model ? unseenLabelShare(report.perClass, model.forest.classes) : null,
  };
}

/** Streams and scores the batch, writes its report, and fixes what the remaining steps will do. */
async function score(ctx: PipelineContext, batchName: string, etag: string, nowIso: string): Promise<Scored> {
  const verdict = classifyBatchName(batchName);
  if (verdict.kind === 'illegal') {
    return {
      kind: 'quarantine',
      code: 'BATCH_NAME_INVALID',
      message: `Illegal batch name: ${verdict.reason}`,
      details: { originalName: batchName },
      targetName: verdict.safeName,
    };
  }
  const correlationId = correlationIdOf(batchName, etag);
  const modelName = ctx.settings.MODEL_NAME;
  const champion = await ctx.registry.getChampion(modelName);
  const championVersionId = champion?.pointer.versionId ?? null;
  const measured = await measureInvocation(async () => {
    try {
      return {
        ok: true as const,
        scored: await scoreBatch(ctx, batchName, etag, championVersionId, modelName),
      };
    } catch (error) {
      if (error instanceof BatchUnreadableError || error instanceof ValidationError) {
        return { ok: false as const, error };
      }
      const status = (error as { statusCode?: number }).statusCode;
      // A 404/412 means superseded only if the upload really changed; otherwise retry.
      if (
        (status === 404 || status === 412) &&
        (await ctx.invoices.incomingProperties(batchName))?.etag !== etag
      ) {
        return { ok: 'superseded' as const, error };
      }
      throw error;
    }
  });
  const outcome = measured.result;
  if (outcome.ok === 'superseded') {
    return { kind: 'superseded', reason: `gone or replaced while scoring (${describeError(outcome.error)})` };
  }
  if (!outcome.ok) {
    return {
      kind: 'quarantine',
      code: outcome.error.code,
      message: outcome.error.message,
      details: outcome.error.details,
      targetName: batchName,
    };
  }
  const { tally, report, unseenLabelShare: newLabelShare } = outcome.scored;
  const summary = tally.summary();
  if (summary.accepted === 0) {
    await ctx.invoices.writeReport(batchName, { batchName, correlationId, summary });
    return {
      kind: 'quarantine',
      code: 'VALIDATION_FAILED',
      message: `No valid invoice rows: all ${summary.rejected} rows were rejected`,
      targetName: batchName,
    };
  }
  const championMetadata = championVersionId
    ? await ctx.registry.getVersionMetadata(modelName, championVersionId)
    : null;
  const baseline = championMetadata?.holdoutMetrics.accuracy ?? null;
  const decision: RetrainDecision = decideAfterEvaluation(
    {
      championBaselineAccuracy: baseline,
      batchAccuracy: report?.accuracy ?? null,
      rowsAccepted: summary.accepted,
      evaluatedAt: nowIso,
      unseenLabelShare: newLabelShare ?? undefined,
      baselineRows: championMetadata?.rows.holdout,
    },
    thresholdsFromSettings(ctx.settings),
  );
  const unseen = report?.featureMix.unseenShare;
  const draft: EvaluationDraft = {
    modelName,
    batchName,
    etag,
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
      unseenLabelShare: newLabelShare,
    },
    decision: {
      kind: decision.kind,
      reason: decision.reason,
      relativeDrop: decision.relativeDrop,
      deadline: decision.kind === 'none' ? null : decision.deadline,
    },
    cpuSeconds: measured.cpuSeconds,
    wallSeconds: measured.wallSeconds,
  };
  await ctx.invoices.writeReport(batchName, {
    ...draft,
    perClass: report?.perClass ?? null,
    confusion: report?.confusion ?? null,
    rejections: summary.rejections,
    rejectionsTruncated: summary.rejectionsTruncated,
  });
  return { kind: 'evaluated', draft };
}

/** The evaluation record and the evaluator's share of the daily aggregate, both idempotent. */
async function record_(ctx: PipelineContext, record: EvaluationRecord): Promise<void> {
  await ctx.evaluations.save(record);
  const evaluation = await evaluationFootprint(ctx, record);
  await ctx.runRecords.addToDailyAggregate(
    record.modelName,
    utcDayOf(record.evaluatedAt),
    {
      energyKwh: evaluation.energy.energyKwh,
      operationalGrams: evaluation.operationalGrams,
      embodiedGrams: evaluation.embodiedGrams,
      evaluations: 1,
    },
    { operationId: `evaluation:${record.correlationId}` },
  );
}

/** The evaluator's own footprint, per 1,000 invoices evaluated. */
function evaluationFootprint(ctx: PipelineContext, record: EvaluationRecord) {
  return footprintOfUsage(ctx, {
    stage: 'evaluate',
    region: ctx.settings.HOME_REGION,
    startedAt: record.evaluatedAt,
    endedAt: new Date(Date.parse(record.evaluatedAt) + Math.max(1, record.wallSeconds) * 1000).toISOString(),
    cpuCores: 1,
    memoryGb: 2,
    cpuSeconds: record.cpuSeconds,
    peakMemoryBytes: null,
    resourceSource: 'function-cpu',
    functionalUnits: record.rowsRead,
  });
}

/**
 * Accuracy, decision and the evaluate stage's SCI. The scoring CPU is not reported as
 * `function.cpu_seconds` here: the function wrapper measures the whole invocation (scoring
 * included) and reports that once.
 */
async function emitTelemetry(ctx: PipelineContext, record: EvaluationRecord): Promise<void> {
  const attributes = {
    batch: record.batchName,
    correlationId: record.correlationId,
    model: record.modelName,
    modelVersion: record.championVersionId ?? 'none',
  };
  if (record.accuracy !== null) ctx.telemetry.metric(METRIC.accuracy, record.accuracy, attributes);
  ctx.telemetry.event(EVENT.retrainDecision, {
    ...attributes,
    kind: record.decision.kind,
    reason: record.decision.reason,
    action: record.action,
    relativeDrop: record.decision.relativeDrop ?? 0,
  });
  try {
    const evaluation = await evaluationFootprint(ctx, record);
    ctx.telemetry.metric(METRIC.energyKwh, evaluation.energy.energyKwh, { ...attributes, stage: 'evaluate' });
    if (evaluation.sciGramsPerUnit !== null) {
      ctx.telemetry.metric(METRIC.sci, evaluation.sciGramsPerUnit, {
        ...attributes,
        stage: 'evaluate',
        region: ctx.settings.HOME_REGION,
        functionalUnit: 'invoices-1000',
      });
    }
  } catch (error) {
    // The records are stored; a telemetry gap must not fail a finished delivery.
    ctx.log(`${record.batchName}: evaluate-stage telemetry failed: ${describeError(error)}`);
  }
}

/**
 * Stores the retrain request and starts or signals the model's orchestration. Submitting is
 * journalled on its own, so a resumed attempt neither submits twice (a second submit while the
 * first is training would queue a needless extra retrain) nor forgets to start the orchestration.
 */
async function act(
  ctx: PipelineContext,
  client: OrchestrationClient,
  claim: BatchClaim,
  draft: EvaluationDraft,
): Promise<EvaluatedAction> {
  const decision = draft.decision;
  if (decision.kind === 'none' || decision.deadline === null) return 'none';
  const modelName = draft.modelName;
  const request: RetrainRequest = {
    requestId: `${draft.evaluatedAt.replace(/[-:.]/g, '')}-${draft.correlationId}`,
    modelName,
    kind: decision.kind,
    reason: decision.reason,
    requestedAt: draft.evaluatedAt,
    deadline: decision.deadline,
    triggeringBatch: draft.batchName,
    relativeDrop: decision.relativeDrop,
  };
  const journal = claim.journal;
  if (!journal.submitted) {
    const earlier = await findSubmitted(ctx, request);
    if (earlier) {
      journal.submitted = { outcome: earlier, escalated: request.kind === 'retrainNow' };
    } else {
      const merge = await ctx.pending.submit(request, draft.evaluatedAt);
      journal.submitted = {
        outcome: merge.kind,
        escalated: merge.kind === 'merged' && merge.escalated,
      };
    }
    await ctx.ledger.save(claim, ctx.now().toISOString());
  }
  const submitted = journal.submitted;
  if (submitted.outcome === 'queued-next') return 'queued-next';
  const instanceId = retrainInstanceId(modelName);
  const status = await client.status(instanceId);
  if (status && isActive(status.runtimeStatus)) {
    if (submitted.outcome === 'created') return journal.starting ? 'started' : 'already-running';
    if (submitted.escalated) {
      await client.raiseEvent(instanceId, START_TRAINING_EVENT, {
        reason: 'escalated',
        plan: null,
      } satisfies StartTrainingEvent);
      return 'escalated';
    }
    return 'merged';
  }
  const pending = await ctx.pending.get(modelName, 'current');
  // Nothing pending: the request was already served by a run that ended since it was submitted.
  if (!pending) return 'merged';
  journal.starting = true;
  await ctx.ledger.save(claim, ctx.now().toISOString());
  return startRetrainSingleton(client, {
    request: pending.request,
    timings: orchestrationTimings(ctx),
    generation: 0,
  });
}

/** Whether an earlier attempt of this delivery already submitted `request` (crash before journalling it). */
async function findSubmitted(
  ctx: PipelineContext,
  request: RetrainRequest,
): Promise<'created' | 'merged' | 'queued-next' | null> {
  const mine = (other: RetrainRequest | undefined) =>
    other !== undefined &&
    (other.requestId === request.requestId ||
      (other.triggeringBatch === request.triggeringBatch &&
        other.reason.includes(request.reason) &&
        Date.parse(other.deadline) <= Date.parse(request.deadline)));
  const current = await ctx.pending.get(request.modelName, 'current');
  if (mine(current?.request)) return current?.request.requestId === request.requestId ? 'created' : 'merged';
  const next = await ctx.pending.get(request.modelName, 'next');
  if (mine(next?.request)) return 'queued-next';
  return null;
}
