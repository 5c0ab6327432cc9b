import { Readable } from 'node:stream';
import type { InvoiceRow } from '../../shared/invoices/schema';
import { serializeCsv } from '../../shared/invoices/serialize';
import { trainFromRows } from '../../shared/model/training';
import { processBlobEvent } from '../../shared/pipeline/blobEvents';
import type { PipelineContext } from '../../shared/pipeline/context';
import type { OrchestrationClient } from '../../shared/pipeline/orchestrationClient';

/** Trains a small forest on `rows` and promotes it as `versionId`, the champion a batch is judged against. */
export async function promoteTrainedChampion(
  ctx: PipelineContext,
  rows: InvoiceRow[],
  options: { modelName: string; seed: number; versionId?: string },
): Promise<void> {
  const versionId = options.versionId ?? 'v1';
  const trained = await trainFromRows(rows, {
    trees: 15,
    maxFeatures: 'sqrt',
    minSamplesLeaf: 1,
    maxDepth: 32,
    seed: options.seed,
    modelName: options.modelName,
    versionId,
  });
  await ctx.registry.putVersion(trained.metadata, trained.artifact);
  await ctx.registry.promote(options.modelName, versionId, {
    reason: 'test champion',
    expectedChampion: null,
  });
}

/** Uploads `rows` as `incoming/<name>` and hands the handler the Event Grid event Azure would send for it. */
export async function deliverBatch(
  ctx: PipelineContext,
  client: OrchestrationClient,
  name: string,
  rows: InvoiceRow[],
  eventTime: string,
): ReturnType<typeof processBlobEvent> {
  await ctx.invoices.upload(name, Readable.from([Buffer.from([...serializeCsv(rows)].join(''))]));
  return processBlobEvent(ctx, client, {
    id: `evt-${name}`,
    eventType: 'Microsoft.Storage.BlobCreated',
    subject: `/blobServices/default/containers/${ctx.invoices.container.containerName}/blobs/incoming/${name}`,
    eventTime,
    data: { contentLength: 1 },
  });
}
