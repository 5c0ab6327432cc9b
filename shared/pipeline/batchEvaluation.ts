import { createHash } from 'node:crypto';
import { BatchUnreadableError, ModelInvalidError, ValidationError, describeError } from '../errors';
import { parsePartialBatchChunks, BatchTally, type BatchSummary } from '../invoices/parser';
import type { InvoiceColumnName } from '../invoices/schema';
import type { ModelMetadata } from '../model/metadata';
import { decideAfterEvaluation, type RetrainDecision } from '../policy/retrainDecision';
import { unseenLabelShare } from '../policy/newLabels';
import type { TrainingModeSetting } from '../policy/trainingMode';
import { trainingModeSettingFor } from '../pipelines/declaredModel';
import { deployedPipelines } from '../pipelines/deployedPipelines';
import type { PipelineDefinition } from '../pipelines/manifest';
import {
  MultiPipelineScorer,
  type PipelineOutcome,
  type PipelineScore,
  type ScoringEntry,
} from '../pipelines/multiScoring';
import { measureInvocation } from '../sci/processUsage';
import { EVENT, METRIC } from '../telemetry/telemetry';
import { parseWith } from '../validation';
import type { PipelineContext } from './context';
import { EVALUATION_RECORD_SCHEMA, type EvaluationRecord } from './evaluationRecords';
import type { RetrainRequest } from './contracts';
import { START_TRAINING_EVENT, retrainInstanceId, type StartTrainingEvent } from './contracts';
import { loadChampion, type LoadedModel } from './modelCache';
import { isActive, startRetrainSingleton, type OrchestrationClient } from './orchestrationClient';
import { orchestrationTimings } from './carbonPolling';
import { footprintOfUsage } from './runRecording';
import { utcDayOf } from '../sci/runRecords';
import { classifyBatchName } from './batchNames';
import {
  perPipelineJournal,
  type BatchClaim,
  type BatchJournal,
  type PipelineProgress,
  type PipelineScored,
  type Scored,
} from './batchLedger';

/**
 * The batch evaluator: validate -> score with every declared pipeline (one parse) -> per pipeline
 * decide -> act -> record, as a journal of idempotent steps (score and report, move, then for each
 * pipeline in turn: pending request, orchestration, evaluation record and daily count; finish)
 * kept in the delivery's ledger claim. A worker that dies or a call that fails after any step —
 * also between one pipeline's effects and the next's — leaves a claim that the next delivery of
 * the same batch, or the incoming sweep once the claim's lease has run out, resumes from the step
 * it reached. Work in progress is never answered as a duplicate: only a finished delivery is.
 *
 * The batch moves to accepted/ before any decision is acted on, so a retrain started by it finds
 * the batch in its window; every pipeline's decision is fixed in the journal when the batch is
 * scored, so a resumed attempt acts on the same decisions even if a champion changed in between.
 * A batch that lacks a pipeline's label or features is skipped for that pipeline with the reason;
 * it is quarantined only when it is unreadable, has no valid row, or no pipeline can use it.
 */
export type EvaluatedAction = 'none' | 'started' | 'already-running' | 'merged' | 'escalated' | 'queued-next';

/** What one pipeline made of an evaluated batch. */
export type PipelineResult =
  | { kind: 'evaluated'; modelName: string; record: EvaluationRecord; action: EvaluatedAction }
  | { kind: 'skipped'; modelName: string; reason: string };

export type BatchOutcome =
  | { kind: 'gone'; batchName: string }
  | { kind: 'duplicate'; batchName: string; claim: 'already-done' }
  | { kind: 'in-progress'; batchName: string; leaseUntil: string }
  | { kind: 'superseded'; batchName: string; reason: string }
  | { kind: 'ignored'; batchName: string; reason: string }
  | { kind: 'quarantined'; batchName: string; code: string; reason: string; quarantinedAs: string }
  /** One result per declared pipeline, in declaration order; at least one is evaluated. */
  | { kind: 'evaluated'; batchName: string; pipelines: PipelineResult[] };

/** The evaluation records of an evaluated batch (skipped pipelines have none), in declaration order. */
export function evaluatedRecords(outcome: Extract<BatchOutcome, { kind: 'evaluated' }>): EvaluationRecord[] {
  return outcome.pipelines.flatMap((p) => (p.kind === 'evaluated' ? [p.record] : []));
}

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
  if (scored.kind !== 'quarantine') await ctx.invoices.accept(batchName, etag);
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
  claim.journal = perPipelineJournal(claim.journal);
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

  if (!journal.moved) {
    // Accepted before acting: a retrain started below must find this batch in its training window.
    if ((await ctx.invoices.accept(batchName, etag)) === 'superseded') {
      return finishSuperseded(ctx, claim, 'changed before it was accepted');
    }
    journal.moved = true;
    await save();
  }
  const pipelines = pipelinesOf(scored);
  const results: PipelineResult[] = [];
  for (const entry of pipelines) {
    if (entry.kind === 'skipped') {
      results.push(entry);
      continue;
    }
    const draft: EvaluationDraft = parseWith(DRAFT_SCHEMA, entry.draft, 'journalled evaluation');
    const progress: PipelineProgress = ((journal.progress ??= {})[entry.modelName] ??= {});
    if (!progress.action) {
      progress.action = await act(ctx, client, claim, progress, draft);
      await save();
    }
    const action = progress.action as EvaluatedAction;
    const record: EvaluationRecord = { ...draft, action };
    if (!progress.recorded) {
      await record_(ctx, record);
      progress.recorded = true;
      await save();
    }
    results.push({ kind: 'evaluated', modelName: entry.modelName, record, action });
  }
  await ctx.ledger.finish(claim, `evaluated:${outcomeText(results)}`, ctx.now().toISOString());
  // Telemetry after the ledger says done, so a resumed delivery never reports a batch twice.
  for (const result of results) {
    if (result.kind === 'skipped') {
      ctx.log(`${JSON.stringify(batchName)}: skipped for ${result.modelName}: ${result.reason}`);
      continue;
    }
    const { record, action } = result;
    await emitTelemetry(ctx, record);
    ctx.log(
      `${JSON.stringify(batchName)}${pipelines.length > 1 ? ` [${record.modelName}]` : ''}: ` +
        `${record.rowsAccepted} rows accepted, ${record.rowsRejected} rejected; ` +
        `accuracy ${record.accuracy === null ? 'n/a' : (record.accuracy * 100).toFixed(1) + ' %'}; ` +
        `${record.decision.kind} (${record.decision.reason}) -> ${action}`,
    );
  }
  return { kind: 'evaluated', batchName, pipelines: results };
}

/** The pipelines of a scored journal; a single-model journal is its one pipeline. */
function pipelinesOf(scored: Extract<Scored, { kind: 'pipelines' | 'evaluated' }>): PipelineScored[] {
  if (scored.kind === 'pipelines') return scored.pipelines;
  return [{ kind: 'evaluated', modelName: String(scored.draft.modelName), draft: scored.draft }];
}

/** The ledger's outcome: a single-model deployment's reads as it always has. */
function outcomeText(results: PipelineResult[]): string {
  const [only] = results;
  if (results.length === 1 && only.kind === 'evaluated') return `${only.record.decision.kind}:${only.action}`;
  return results
    .map((r) =>
      r.kind === 'skipped'
        ? `${r.modelName}=skipped`
        : `${r.modelName}=${r.record.decision.kind}:${r.action}`,
    )
    .join(',');
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

/** A pipeline's champion as the batch is scored: loaded, absent, or unreadable (then skipped). */
type ChampionState =
  | { kind: 'loaded'; model: LoadedModel; baseline: ModelMetadata }
  | { kind: 'none' }
  | { kind: 'unreadable'; reason: string };

/**
 * Each pipeline's champion, read before the batch is streamed. A champion that fails its checks
 * (a tampered or malformed artifact) skips its own pipeline with the reason instead of holding up
 * every model's evaluation; a storage failure still fails the delivery, which is retried.
 */
async function loadChampions(
  ctx: PipelineContext,
  pipelines: readonly PipelineDefinition[],
): Promise<Map<string, ChampionState>> {
  const states = new Map<string, ChampionState>();
  for (const { name } of pipelines) {
    try {
      const model = await loadChampion(ctx.registry, name);
      states.set(
        name,
        model
          ? {
              kind: 'loaded',
              model,
              // The version record (not the artifact's copy) holds the measured figures.
              baseline: await ctx.registry.getVersionMetadata(name, model.metadata.versionId),
            }
          : { kind: 'none' },
      );
    } catch (error) {
      if (!(error instanceof ModelInvalidError)) throw error;
      states.set(name, { kind: 'unreadable', reason: `its champion cannot be read: ${error.message}` });
    }
  }
  return states;
}

interface ScoredBatch {
  tally: BatchTally;
  columns: readonly InvoiceColumnName[];
  /** By pipeline name; absent when no row was accepted (nothing to score). */
  outcomes: Map<string, PipelineOutcome>;
}

/** One streamed parse, every pipeline that can read the batch scoring each chunk of rows in turn. */
async function scoreBatch(
  ctx: PipelineContext,
  batchName: string,
  etag: string,
  entries: readonly ScoringEntry[],
): Promise<ScoredBatch> {
  const tally = new BatchTally();
  // Set by the parser once it knows the batch's columns, before the first row.
  const scoring: { scorer: MultiPipelineScorer | null; columns: readonly InvoiceColumnName[] } = {
    scorer: null,
    columns: [],
  };
  const stream = await ctx.invoices.openIncoming(batchName, etag);
  const chunks = parsePartialBatchChunks(
    stream,
    { fileName: batchName },
    {
      onColumns: (columns) => {
        scoring.columns = columns;
        scoring.scorer = new MultiPipelineScorer(entries, columns);
      },
    },
  );
  for await (const records of chunks) {
    for (const record of records) {
      tally.add(record);
      if (record.kind === 'accepted') scoring.scorer?.add(record.row);
    }
  }
  const outcomes = scoring.scorer?.finish() ?? [];
  return { tally, columns: scoring.columns, outcomes: new Map(outcomes.map((o) => [o.pipeline, o])) };
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
  const pipelines = deployedPipelines(ctx.settings).pipelines;
  const champions = await loadChampions(ctx, pipelines);
  const entries: ScoringEntry[] = [];
  for (const pipeline of pipelines) {
    const champion = champions.get(pipeline.name);
    if (champion?.kind === 'loaded') entries.push({ pipeline, champion: champion.model });
    else if (champion?.kind === 'none') entries.push({ pipeline, champion: null });
  }
  const measured = await measureInvocation(async () => {
    try {
      return { ok: true as const, scored: await scoreBatch(ctx, batchName, etag, entries) };
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
  const { tally, columns, outcomes } = outcome.scored;
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
  const judged = pipelines.map((pipeline): PipelineJudgement => {
    const champion = champions.get(pipeline.name) as ChampionState;
    if (champion.kind === 'unreadable')
      return { kind: 'skipped', modelName: pipeline.name, reason: champion.reason };
    const scoredOutcome = outcomes.get(pipeline.name) as PipelineOutcome;
    if (scoredOutcome.kind === 'skipped') {
      return { kind: 'skipped', modelName: pipeline.name, reason: scoredOutcome.reason };
    }
    return {
      kind: 'evaluated',
      pipeline,
      champion: champion.kind === 'loaded' ? champion : null,
      score: scoredOutcome.kind === 'scored' ? scoredOutcome.score : null,
    };
  });
  const evaluatedCount = judged.filter((j) => j.kind === 'evaluated').length;
  const batch: BatchFacts = {
    batchName,
    etag,
    correlationId,
    evaluatedAt: nowIso,
    summary,
    // The one parse is shared: each record carries its share, so a batch's records sum to it once.
    cpuSeconds: measured.cpuSeconds / Math.max(1, evaluatedCount),
    wallSeconds: measured.wallSeconds / Math.max(1, evaluatedCount),
  };
  const results = judged.map((j) =>
    j.kind === 'evaluated'
      ? judge(batch, j, trainingModeSettingFor(j.pipeline, ctx.settings.TRAINING_MODE))
      : null,
  );
  const report = {
    batchName,
    etag,
    correlationId,
    evaluatedAt: nowIso,
    columns,
    rowsRead: summary.rowsRead,
    rowsAccepted: summary.accepted,
    rowsRejected: summary.rejected,
    cpuSeconds: measured.cpuSeconds,
    wallSeconds: measured.wallSeconds,
    pipelines: judged.map((j, i) => {
      const result = results[i];
      if (j.kind === 'skipped' || result === null) return j;
      const { draft } = result;
      return {
        kind: 'evaluated' as const,
        modelName: draft.modelName,
        championVersionId: draft.championVersionId,
        championBaselineAccuracy: draft.championBaselineAccuracy,
        accuracy: draft.accuracy,
        macroF1: draft.macroF1,
        drift: draft.drift,
        decision: draft.decision,
        perClass: j.score?.perClass ?? null,
        confusion: j.score?.confusion ?? null,
      };
    }),
    rejections: summary.rejections,
    rejectionsTruncated: summary.rejectionsTruncated,
  };
  await ctx.invoices.writeReport(batchName, report);
  if (evaluatedCount === 0) {
    const reasons = judged.map((j) => (j.kind === 'skipped' ? `${j.modelName}: ${j.reason}` : '')).join('; ');
    return {
      kind: 'quarantine',
      code: 'VALIDATION_FAILED',
      message: `No declared pipeline can use this batch (${reasons})`,
      details: { columns },
      targetName: batchName,
    };
  }
  return {
    kind: 'pipelines',
    pipelines: judged.map((j, i): PipelineScored => {
      const result = results[i];
      if (j.kind === 'skipped' || result === null) return j as PipelineScored;
      return { kind: 'evaluated', modelName: j.pipeline.name, draft: result.draft };
    }),
  };
}

type PipelineJudgement =
  | { kind: 'skipped'; modelName: string; reason: string }
  | {
      kind: 'evaluated';
      pipeline: PipelineDefinition;
      champion: Extract<ChampionState, { kind: 'loaded' }> | null;
      /** Null without a champion: the batch is kept for the first training. */
      score: PipelineScore | null;
    };

interface BatchFacts {
  batchName: string;
  etag: string;
  correlationId: string;
  evaluatedAt: string;
  summary: BatchSummary;
  cpuSeconds: number;
  wallSeconds: number;
}

/** One pipeline's decision on the batch, with that pipeline's own retrain thresholds and deadlines. */
function judge(
  batch: BatchFacts,
  judgement: Extract<PipelineJudgement, { kind: 'evaluated' }>,
  trainingMode: TrainingModeSetting,
): { draft: EvaluationDraft } {
  const { pipeline, champion, score: scored } = judgement;
  const baseline = champion?.baseline.holdoutMetrics.accuracy ?? null;
  const newLabelShare =
    scored && champion ? unseenLabelShare(scored.perClass, champion.model.forest.classes) : null;
  const decision: RetrainDecision = decideAfterEvaluation(
    {
      championBaselineAccuracy: baseline,
      batchAccuracy: scored?.accuracy ?? null,
      rowsAccepted: batch.summary.accepted,
      evaluatedAt: batch.evaluatedAt,
      unseenLabelShare: newLabelShare ?? undefined,
      baselineRows: champion?.baseline.rows.holdout,
      trainingMode,
    },
    pipeline.retrain,
  );
  return {
    draft: {
      modelName: pipeline.name,
      batchName: batch.batchName,
      etag: batch.etag,
      correlationId: batch.correlationId,
      evaluatedAt: batch.evaluatedAt,
      championVersionId: champion?.model.metadata.versionId ?? null,
      championBaselineAccuracy: baseline,
      accuracy: scored?.accuracy ?? null,
      macroF1: scored?.macroF1 ?? null,
      rowsRead: batch.summary.rowsRead,
      rowsAccepted: batch.summary.accepted,
      rowsRejected: batch.summary.rejected,
      drift: {
        unseenSupplierShare: scored ? (scored.unseenShare.supplierId ?? null) : null,
        unseenCountryShare: scored ? (scored.unseenShare.supplierCountry ?? null) : null,
        countryMixDistance: null,
        unseenLabelShare: newLabelShare,
      },
      decision: {
        kind: decision.kind,
        reason: decision.reason,
        relativeDrop: decision.relativeDrop,
        deadline: decision.kind === 'none' ? null : decision.deadline,
      },
      cpuSeconds: batch.cpuSeconds,
      wallSeconds: batch.wallSeconds,
    },
  };
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
  progress: PipelineProgress,
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
  if (!progress.submitted) {
    const earlier = await findSubmitted(ctx, request);
    if (earlier) {
      progress.submitted = { outcome: earlier, escalated: request.kind === 'retrainNow' };
    } else {
      const merge = await ctx.pending.submit(request, draft.evaluatedAt);
      progress.submitted = {
        outcome: merge.kind,
        escalated: merge.kind === 'merged' && merge.escalated,
      };
    }
    await ctx.ledger.save(claim, ctx.now().toISOString());
  }
  const submitted = progress.submitted;
  if (submitted.outcome === 'queued-next') return 'queued-next';
  const instanceId = retrainInstanceId(modelName);
  const status = await client.status(instanceId);
  if (status && isActive(status.runtimeStatus)) {
    if (submitted.outcome === 'created') return progress.starting ? 'started' : 'already-running';
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
  progress.starting = true;
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
