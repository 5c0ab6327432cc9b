import { parseInvoiceBatch } from '../invoices/parser';
import { isHoldoutRow } from '../model/training';
import { MultiPipelineScorer, type DeclaredPredictor, type PipelineOutcome } from '../pipelines/multiScoring';
import { measureInvocation } from '../sci/processUsage';
import type { Comparison } from './contracts';
import type { ParsedActivityInput } from './activityContracts';
import { promotionGate } from '../policy/promotionGate';
import type { PipelineContext } from './context';
import { loadModel } from './modelCache';

/**
 * Challenger against champion on the same rows: the held-out invoices (stable hash of invoiceId,
 * so no model in the lineage ever trained on them) of the challenger's data window. The champion
 * is read at comparison time; the promotion CAS later fails if it changed after this. Either may
 * be a single-model or a declared artifact (a declared challenger may replace a single-model
 * champion): each reads the rows with its own encoding, through the one loader of both formats.
 */
export async function compareChallenger(
  ctx: PipelineContext,
  input: ParsedActivityInput<'compareChallenger'>,
): Promise<Comparison> {
  const startedAt = ctx.now().toISOString();
  const champion = await ctx.registry.getChampion(input.modelName);
  const championVersionId = champion?.pointer.versionId ?? null;
  const measured = await measureInvocation(async () => {
    const entries = [
      scoring('challenger', await loadModel(ctx.registry, input.modelName, input.challengerVersionId)),
      ...(champion
        ? [
            scoring(
              'champion',
              await loadModel(ctx.registry, input.modelName, champion.pointer.versionId, {
                expectedSha256: champion.pointer.artifactSha256,
              }),
            ),
          ]
        : []),
    ];
    const scorer = new MultiPipelineScorer(entries);
    let holdoutRows = 0;
    for (const batch of input.dataWindow) {
      const stream = await ctx.invoices.openAccepted(batch);
      for await (const record of parseInvoiceBatch(stream, { fileName: batch })) {
        if (record.kind !== 'accepted' || !isHoldoutRow(record.row.invoiceId)) continue;
        holdoutRows++;
        scorer.add(record.row);
      }
    }
    const [challenger, incumbent] = scorer.finish().map(accuracyOf);
    return {
      holdoutRows,
      challenger: { accuracy: challenger },
      champion: incumbent === undefined ? null : { accuracy: incumbent },
    };
  });
  const { holdoutRows, challenger, champion: incumbent } = measured.result;
  const gate = promotionGate({
    challengerAccuracy: challenger.accuracy,
    championAccuracy: incumbent?.accuracy ?? null,
    holdoutRows,
    minGain: ctx.settings.PROMOTION_MIN_GAIN,
  });
  return {
    challengerVersionId: input.challengerVersionId,
    championVersionId,
    challengerAccuracy: challenger.accuracy,
    championAccuracy: incumbent?.accuracy ?? null,
    holdoutRows,
    verdict: gate.verdict,
    reason: gate.reason,
    usage: {
      stage: 'compare',
      region: ctx.settings.HOME_REGION,
      startedAt,
      endedAt: new Date(Date.parse(startedAt) + measured.wallSeconds * 1000).toISOString(),
      cpuCores: 1,
      memoryGb: 2,
      cpuSeconds: measured.cpuSeconds,
      peakMemoryBytes: null,
      resourceSource: 'function-cpu',
      functionalUnits: 1,
    },
  };
}

function scoring(name: string, model: DeclaredPredictor) {
  return { pipeline: { name, ...model.encoder.declaration }, champion: model };
}

/** Accuracy on the held-out rows; a window without held-out rows scores 0 (the gate then rejects). */
function accuracyOf(outcome: PipelineOutcome): number {
  return outcome.kind === 'scored' ? outcome.score.accuracy : 0;
}
