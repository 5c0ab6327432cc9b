import { z } from 'zod';
import { ConflictError } from '../errors';
import { parseWith } from '../validation';
import type { PipelineContext } from './context';
import type { OrchestrationClient } from './orchestrationClient';
import { processIncomingBatch, type BatchOutcome } from './batchEvaluation';

/**
 * The Event Grid trigger passes only the event, never the blob: the evaluator streams the blob
 * itself, so memory stays bounded by the parser's chunks whatever the batch's size (a blob trigger
 * lets the host read the whole blob into the worker first).
 *
 * Event Grid's schema for Microsoft.Storage.BlobCreated: the subject is
 * `/blobServices/default/containers/{container}/blobs/{name}` with the name unencoded
 * (https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage).
 */
export const BLOB_CREATED = 'Microsoft.Storage.BlobCreated';
const INCOMING_PREFIX = 'incoming/';
const SUBJECT = /^\/blobServices\/default\/containers\/([^/]+)\/blobs\/([\s\S]+)$/;

export const BLOB_EVENT_SCHEMA = z.object({
  id: z.string().min(1),
  eventType: z.string().min(1),
  subject: z.string().regex(SUBJECT, 'expected /blobServices/default/containers/{container}/blobs/{name}'),
  eventTime: z.string().min(1),
  data: z
    .object({
      eTag: z.string().optional(),
      contentLength: z.number().nonnegative().optional(),
      url: z.string().optional(),
    })
    .loose()
    .optional(),
});
export type BlobEvent = z.output<typeof BLOB_EVENT_SCHEMA>;

export type BlobEventTarget = { kind: 'batch'; name: string } | { kind: 'not-a-batch'; reason: string };

/** Validates an event and says which batch it is about (or why it is not about one). */
export function batchOfEvent(raw: unknown, invoicesContainer: string): BlobEventTarget {
  const event = parseWith(BLOB_EVENT_SCHEMA, raw, 'Event Grid blob event');
  if (event.eventType !== BLOB_CREATED)
    return { kind: 'not-a-batch', reason: `event type ${event.eventType}` };
  const [, container, path] = SUBJECT.exec(event.subject) ?? [];
  if (container !== invoicesContainer) return { kind: 'not-a-batch', reason: `container ${container}` };
  if (!path?.startsWith(INCOMING_PREFIX) || path.length === INCOMING_PREFIX.length) {
    return { kind: 'not-a-batch', reason: `blob outside ${INCOMING_PREFIX}` };
  }
  return { kind: 'batch', name: path.slice(INCOMING_PREFIX.length) };
}

/**
 * Handles one BlobCreated event. A delivery whose claim another worker holds is failed with a
 * retryable error, so Event Grid delivers it again later instead of taking "in progress" for done.
 */
export async function processBlobEvent(
  ctx: PipelineContext,
  client: OrchestrationClient,
  raw: unknown,
): Promise<BatchOutcome> {
  const target = batchOfEvent(raw, ctx.invoices.container.containerName);
  if (target.kind === 'not-a-batch') return { kind: 'ignored', batchName: '', reason: target.reason };
  const outcome = await processIncomingBatch(ctx, client, target.name);
  if (outcome.kind === 'in-progress') {
    throw new ConflictError(
      `${JSON.stringify(target.name)} is being processed by another worker until ${outcome.leaseUntil}; retry later`,
      { retryable: true },
    );
  }
  return outcome;
}
