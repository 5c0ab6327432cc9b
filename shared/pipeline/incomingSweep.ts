import { describeError } from '../errors';
import type { PipelineContext } from './context';
import type { OrchestrationClient } from './orchestrationClient';
import { processDelivery, processIncomingBatch, type BatchOutcome } from './batchEvaluation';

/**
 * The safety net under event delivery: re-drives every blob that has sat in incoming/ longer than
 * INCOMING_STALE_MINUTES (an event lost, dead-lettered, or failed past its retries) and every claim
 * whose lease ran out (a worker killed mid-batch), resuming each from its journal. One failing batch
 * is reported and the sweep goes on with the others.
 */
export interface SweepReport {
  staleIncoming: number;
  staleClaims: number;
  outcomes: { batchName: string; kind: BatchOutcome['kind'] }[];
  failures: { batchName: string; error: string }[];
}

export async function sweepIncoming(ctx: PipelineContext, client: OrchestrationClient): Promise<SweepReport> {
  const now = ctx.now();
  const nowIso = now.toISOString();
  const staleBefore = now.getTime() - ctx.settings.INCOMING_STALE_MINUTES * 60_000;
  const report: SweepReport = { staleIncoming: 0, staleClaims: 0, outcomes: [], failures: [] };
  const attempt = async (batchName: string, run: () => Promise<BatchOutcome>) => {
    try {
      report.outcomes.push({ batchName, kind: (await run()).kind });
    } catch (error) {
      report.failures.push({ batchName, error: describeError(error) });
    }
  };

  const claims = await ctx.ledger.listStale(nowIso).catch((error: unknown) => {
    report.failures.push({ batchName: '(stale claims)', error: describeError(error) });
    return [];
  });
  report.staleClaims = claims.length;
  const resumed = new Set<string>();
  for (const claim of claims) {
    resumed.add(`${claim.name}\n${claim.etag}`);
    await attempt(claim.name, () => processDelivery(ctx, client, claim.name, claim.etag));
  }

  const incoming = await ctx.invoices.listIncomingBlobs().catch((error: unknown) => {
    report.failures.push({ batchName: '(incoming/ listing)', error: describeError(error) });
    return [];
  });
  const stale = incoming.filter(
    (b) => Date.parse(b.lastModified) <= staleBefore && !resumed.has(`${b.name}\n${b.etag}`),
  );
  report.staleIncoming = stale.length;
  for (const blob of stale) await attempt(blob.name, () => processIncomingBatch(ctx, client, blob.name));

  if (report.staleClaims + report.staleIncoming + report.failures.length > 0) {
    ctx.log(
      `incoming sweep: ${report.staleIncoming} stale in incoming/, ${report.staleClaims} stale claims, ` +
        `${report.failures.length} failed` +
        report.failures.map((f) => `\n  ${JSON.stringify(f.batchName)}: ${f.error}`).join(''),
    );
  }
  return report;
}
