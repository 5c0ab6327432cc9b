import { createHash } from 'node:crypto';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import type { TableClient } from '@azure/data-tables';
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../errors';
import { parseJsonWith } from '../validation';

/**
 * Blob layout of the `invoices` container:
 *   incoming/{name}            uploads (the blob trigger watches this prefix)
 *   accepted/{name}            batches that parsed (training windows are drawn from here)
 *   quarantine/{name}          batches that failed whole, with quarantine/{name}.reason.json
 *   reports/{name}.json        the evaluation report with every rejected row
 * Nothing is deleted from incoming/ until its copy exists elsewhere, so no batch is ever lost.
 */
export const INVOICES_CONTAINER = 'invoices';
const PREFIX = {
  incoming: 'incoming/',
  accepted: 'accepted/',
  quarantine: 'quarantine/',
  reports: 'reports/',
};

const BATCH_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

export function assertBatchName(name: string): string {
  if (!BATCH_NAME.test(name) || name.includes('..')) {
    throw new ValidationError(`Invalid batch name "${name}": letters, digits, dot, dash and underscore only`);
  }
  return name;
}

export interface AcceptedBatch {
  name: string;
  sizeBytes: number;
  acceptedAt: string;
}

export class InvoiceStore {
  readonly container: ContainerClient;

  constructor(blobs: BlobServiceClient, containerName = INVOICES_CONTAINER) {
    this.container = blobs.getContainerClient(containerName);
  }

  async ensureContainer(): Promise<void> {
    await this.container.createIfNotExists();
  }

  /** Uploads a new batch (used by the demo driver and tests; users upload with any tool). */
  async upload(name: string, data: Buffer | NodeJS.ReadableStream): Promise<string> {
    const blob = this.container.getBlockBlobClient(PREFIX.incoming + assertBatchName(name));
    const response = Buffer.isBuffer(data)
      ? await blob.uploadData(data)
      : await blob.uploadStream(
          data as NodeJS.ReadableStream & import('node:stream').Readable,
          4 * 1024 * 1024,
          4,
        );
    return response.etag ?? '';
  }

  async incomingProperties(name: string): Promise<{ etag: string; sizeBytes: number } | null> {
    try {
      const props = await this.container
        .getBlobClient(PREFIX.incoming + assertBatchName(name))
        .getProperties();
      return { etag: props.etag ?? '', sizeBytes: props.contentLength ?? 0 };
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return null;
      throw error;
    }
  }

  async listIncoming(): Promise<string[]> {
    const names: string[] = [];
    for await (const item of this.container.listBlobsFlat({ prefix: PREFIX.incoming })) {
      names.push(item.name.slice(PREFIX.incoming.length));
    }
    return names;
  }

  /** Streams an incoming batch as it is at `etag` (a replaced upload is a different delivery). */
  async openIncoming(name: string, etag: string): Promise<NodeJS.ReadableStream> {
    const response = await this.container
      .getBlobClient(PREFIX.incoming + assertBatchName(name))
      .download(0, undefined, { conditions: { ifMatch: etag } });
    if (!response.readableStreamBody) throw new NotFoundError(`incoming/${name} has no body`);
    return response.readableStreamBody;
  }

  async openAccepted(name: string): Promise<NodeJS.ReadableStream> {
    try {
      const response = await this.container.getBlobClient(PREFIX.accepted + assertBatchName(name)).download();
      if (!response.readableStreamBody) throw new NotFoundError(`accepted/${name} has no body`);
      return response.readableStreamBody;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) {
        throw new NotFoundError(`No accepted batch named ${name}`);
      }
      throw error;
    }
  }

  /** Oldest first, by the time they were accepted. */
  async listAccepted(): Promise<AcceptedBatch[]> {
    const out: AcceptedBatch[] = [];
    for await (const item of this.container.listBlobsFlat({ prefix: PREFIX.accepted })) {
      out.push({
        name: item.name.slice(PREFIX.accepted.length),
        sizeBytes: item.properties.contentLength ?? 0,
        acceptedAt: (item.properties.createdOn ?? item.properties.lastModified).toISOString(),
      });
    }
    return out.sort((a, b) => a.acceptedAt.localeCompare(b.acceptedAt) || a.name.localeCompare(b.name));
  }

  async accept(name: string, etag: string): Promise<void> {
    await this.moveIncoming(name, etag, PREFIX.accepted + name);
  }

  async quarantine(
    name: string,
    etag: string,
    reason: { code: string; message: string; details?: unknown },
  ): Promise<void> {
    await this.container
      .getBlockBlobClient(`${PREFIX.quarantine}${assertBatchName(name)}.reason.json`)
      .uploadData(
        Buffer.from(
          JSON.stringify({ batch: name, quarantinedAt: new Date().toISOString(), ...reason }, null, 2),
        ),
        { blobHTTPHeaders: { blobContentType: 'application/json' } },
      );
    await this.moveIncoming(name, etag, PREFIX.quarantine + name);
  }

  async quarantineReason(name: string): Promise<unknown> {
    const response = await this.container
      .getBlobClient(`${PREFIX.quarantine}${assertBatchName(name)}.reason.json`)
      .downloadToBuffer();
    return JSON.parse(response.toString('utf8'));
  }

  async listQuarantined(): Promise<string[]> {
    const names: string[] = [];
    for await (const item of this.container.listBlobsFlat({ prefix: PREFIX.quarantine })) {
      if (!item.name.endsWith('.reason.json')) names.push(item.name.slice(PREFIX.quarantine.length));
    }
    return names;
  }

  async writeReport(name: string, report: unknown): Promise<void> {
    await this.container
      .getBlockBlobClient(`${PREFIX.reports}${assertBatchName(name)}.json`)
      .uploadData(Buffer.from(JSON.stringify(report, null, 2)), {
        blobHTTPHeaders: { blobContentType: 'application/json' },
      });
  }

  async readReport(name: string): Promise<unknown> {
    const buffer = await this.container
      .getBlobClient(`${PREFIX.reports}${assertBatchName(name)}.json`)
      .downloadToBuffer();
    return JSON.parse(buffer.toString('utf8'));
  }

  /** Server-side copy, then delete the source only if it is still the version we processed. */
  private async moveIncoming(name: string, etag: string, target: string): Promise<void> {
    const source = this.container.getBlobClient(PREFIX.incoming + assertBatchName(name));
    const poller = await this.container
      .getBlobClient(target)
      .beginCopyFromURL(source.url, { sourceConditions: { ifMatch: etag } });
    await poller.pollUntilDone();
    try {
      await source.delete({ conditions: { ifMatch: etag } });
    } catch (error) {
      // 404: a retried delivery already moved it; 412: replaced by a newer upload, which gets its own event.
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== 404 && status !== 412) throw error;
    }
  }
}

/**
 * Exactly-once processing of blob deliveries, keyed on name + ETag: Event Grid and the blob
 * trigger both deliver at least once, and a re-upload under the same name is a new batch.
 */
const CLAIM_SCHEMA = z.object({
  status: z.enum(['processing', 'done']),
  claimedAt: z.string(),
  outcome: z.string(),
});
export type ClaimResult = 'claimed' | 'already-done' | 'in-progress-elsewhere';

export class ProcessedBatchLedger {
  constructor(
    private readonly table: TableClient,
    private readonly staleAfterMs = 10 * 60_000,
  ) {}

  async ensureTable(): Promise<void> {
    await this.table.createTable();
  }

  static keyOf(name: string, etag: string): string {
    return createHash('sha256').update(`${name}\n${etag}`).digest('hex');
  }

  async claim(name: string, etag: string, nowIso: string): Promise<ClaimResult> {
    const rowKey = ProcessedBatchLedger.keyOf(name, etag);
    const body = JSON.stringify({ status: 'processing', claimedAt: nowIso, outcome: '' });
    try {
      await this.table.createEntity({ partitionKey: 'batch', rowKey, name, body });
      return 'claimed';
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 409) throw error;
    }
    const entity = await this.table.getEntity<{ body: string }>('batch', rowKey);
    const claim = parseJsonWith(CLAIM_SCHEMA, entity.body, 'batch claim');
    if (claim.status === 'done') return 'already-done';
    if (Date.parse(nowIso) - Date.parse(claim.claimedAt) < this.staleAfterMs) return 'in-progress-elsewhere';
    // The earlier worker died mid-way: take over, but only if nobody else just did.
    try {
      await this.table.updateEntity({ partitionKey: 'batch', rowKey, name, body }, 'Replace', {
        etag: entity.etag,
      });
      return 'claimed';
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 412) return 'in-progress-elsewhere';
      throw error;
    }
  }

  async finish(name: string, etag: string, outcome: string, nowIso: string): Promise<void> {
    const rowKey = ProcessedBatchLedger.keyOf(name, etag);
    await this.table.upsertEntity(
      {
        partitionKey: 'batch',
        rowKey,
        name,
        body: JSON.stringify({ status: 'done', claimedAt: nowIso, outcome }),
      },
      'Replace',
    );
  }

  /** Lets a delivery that failed transiently be retried instead of being reported as in progress. */
  async release(name: string, etag: string): Promise<void> {
    try {
      await this.table.deleteEntity('batch', ProcessedBatchLedger.keyOf(name, etag));
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
    }
  }
}
