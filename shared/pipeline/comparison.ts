import { z } from 'zod';
import { parseWith } from '../validation';
import { parseInvoiceBatch } from '../invoices/parser';
import { ChunkedEvaluator } from '../model/evaluation';
import { isHoldoutRow } from '../model/training';
import { measureInvocation } from '../sci/processUsage';
import type { Comparison } from './contracts';
import type { PipelineContext } from './context';
import { loadModelVersion } from './modelCache';

const COMPARE_INPUT = z.object({
  modelName: z.string(),
  challengerVersionId: z.string(),
  dataWindow: z.array(z.string()).min(1),
});

/**
 * Challenger against champion on the same rows: the held-out invoices (stable hash of invoiceId,
 * so no model in the lineage ever trained on them) of the challenger's data window. The champion
 * is read at comparison time; the promotion CAS later fails if it changed after this.
 */
export async function compareChallenger(ctx: PipelineContext, raw: unknown): Promise<Comparison> {
  const input = parseWith(COMPARE_INPUT, raw, 'compareChallenger input');
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
  const minGain = ctx.settings.PROMOTION_MIN_GAIN;
  const better = incumbent === null ? holdoutRows > 0 : challenger.accuracy > incumbent.accuracy + minGain;
  const pct = (a: number) => `${(a * 100).toFixed(2)} %`;
  const reason =
    incumbent === null
      ? `first model: ${pct(challenger.accuracy)} on ${holdoutRows} held-out rows`
      : `challenger ${pct(challenger.accuracy)} vs champion ${pct(incumbent.accuracy)} on the same ${holdoutRows} held-out rows` +
        (minGain > 0 ? ` (must gain ${pct(minGain)})` : '');
  return {
    challengerVersionId: input.challengerVersionId,
    championVersionId,
    challengerAccuracy: challenger.accuracy,
    championAccuracy: incumbent?.accuracy ?? null,
    holdoutRows,
    verdict: better ? 'promote' : 'reject',
    reason,
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
