import { parseInvoiceBatch } from '../invoices/parser';
import { ChunkedEvaluator } from '../model/evaluation';
import { isHoldoutRow } from '../model/training';
import { measureInvocation } from '../sci/processUsage';
import type { Comparison } from './contracts';
import type { ParsedActivityInput } from './activityContracts';
import { promotionGate } from '../policy/promotionGate';
import type { PipelineContext } from './context';
import { loadModelVersion } from './modelCache';

/**
 * Challenger against champion on the same rows: the held-out invoices (stable hash of invoiceId,
 * so no model in the lineage ever trained on them) of the challenger's data window. The champion
 * is read at comparison time; the promotion CAS later fails if it changed after this.
 */
export async function compareChallenger(
  ctx: PipelineContext,
  input: ParsedActivityInput<'compareChallenger'>,
): Promise<Comparison> {
  const startedAt = ctx.now().toISOString();
  const champion = await ctx.registry.getChampion(input.modelName);
  const championVersionId = champion?.pointer.versionId ?? null;
  const measured = await measureInvocation(async () => {
    const challenger = new ChunkedEvaluator(
      await loadModelVersion(ctx, input.modelName, input.challengerVersionId),
    );
    const incumbent = championVersionId
      ? new ChunkedEvaluator(await loadModelVersion(ctx, input.modelName, championVersionId))
      : null;
    let holdoutRows = 0;
    for (const batch of input.dataWindow) {
      const stream = await ctx.invoices.openAccepted(batch);
      for await (const record of parseInvoiceBatch(stream, { fileName: batch })) {
        if (record.kind !== 'accepted' || !isHoldoutRow(record.row.invoiceId)) continue;
        holdoutRows++;
        challenger.add(record.row);
        incumbent?.add(record.row);
      }
    }
    return { holdoutRows, challenger: challenger.report(), champion: incumbent?.report() ?? null };
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
