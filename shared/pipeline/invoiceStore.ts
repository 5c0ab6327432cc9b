import type { BlobClient, BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { NotFoundError, ValidationError } from '../errors';
import { classifyBatchName } from './batchNames';

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

/** For inputs that must name a legal batch (uploads, the training job's DATA_BLOBS). */
export function assertBatchName(name: string): string {
  const verdict = classifyBatchName(name);
  if (verdict.kind === 'illegal') {
    throw new ValidationError(`Invalid batch name ${JSON.stringify(name)}: ${verdict.reason}`);
  }
  return name;
}

export interface IncomingBlob {
  name: string;
  etag: string;
  lastModified: string;
}

/** What a move did: `superseded` when the source changed or vanished before it was copied. */
export type MoveResult = 'moved' | 'superseded';

/** Metadata on a moved copy naming the incoming version it came from, so a retried move can tell. */
const SOURCE_ETAG_METADATA = 'greenmlsourceetag';
const plainEtag = (etag: string) => etag.replace(/"/g, '');

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
      const props = await this.container.getBlobClient(PREFIX.incoming + name).getProperties();
      return { etag: props.etag ?? '', sizeBytes: props.contentLength ?? 0 };
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return null;
      throw error;
    }
  }

  async listIncoming(): Promise<string[]> {
    return (await this.listIncomingBlobs()).map((b) => b.name);
  }

  async listIncomingBlobs(): Promise<IncomingBlob[]> {
    const out: IncomingBlob[] = [];
    for await (const item of this.container.listBlobsFlat({ prefix: PREFIX.incoming })) {
      out.push({
        name: item.name.slice(PREFIX.incoming.length),
        etag: item.properties.etag ?? '',
        lastModified: item.properties.lastModified.toISOString(),
      });
    }
    return out;
  }

  /** Streams an incoming batch as it is at `etag` (a replaced upload is a different delivery). */
  async openIncoming(name: string, etag: string): Promise<NodeJS.ReadableStream> {
    const response = await this.container
      .getBlobClient(PREFIX.incoming + name)
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

  async accept(name: string, etag: string): Promise<MoveResult> {
    return this.moveIncoming(name, etag, PREFIX.accepted + name);
  }

  /** Whether `accepted/{name}` holds the copy of this very upload (a retried step checks this). */
  async isAccepted(name: string, etag: string): Promise<boolean> {
    return this.isCopyOf(this.container.getBlobClient(PREFIX.accepted + name), etag);
  }

  /**
   * Moves an incoming batch to quarantine/{targetName} with a reason file. `targetName` is the
   * batch's own name, or a safe one for an illegal name (the reason file keeps the original).
   */
  async quarantine(
    name: string,
    etag: string,
    reason: { code: string; message: string; details?: unknown },
    targetName: string = name,
    quarantinedAt: string = new Date().toISOString(),
  ): Promise<MoveResult> {
    await this.container
      .getBlockBlobClient(`${PREFIX.quarantine}${targetName}.reason.json`)
      .uploadData(
        Buffer.from(
          JSON.stringify({ batch: targetName, originalName: name, etag, quarantinedAt, ...reason }, null, 2),
        ),
        { blobHTTPHeaders: { blobContentType: 'application/json' } },
      );
    return this.moveIncoming(name, etag, PREFIX.quarantine + targetName);
  }

  async quarantineReason(name: string): Promise<unknown> {
    const response = await this.container
      .getBlobClient(`${PREFIX.quarantine}${name}.reason.json`)
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
      .getBlockBlobClient(`${PREFIX.reports}${name}.json`)
      .uploadData(Buffer.from(JSON.stringify(report, null, 2)), {
        blobHTTPHeaders: { blobContentType: 'application/json' },
      });
  }

  async readReport(name: string): Promise<unknown> {
    const buffer = await this.container.getBlobClient(`${PREFIX.reports}${name}.json`).downloadToBuffer();
    return JSON.parse(buffer.toString('utf8'));
  }

  /**
   * Server-side copy, then delete the source only if it is still the version we processed. Safe to
   * repeat after a failure at any point: a copy already made is recognised by its metadata.
   */
  private async moveIncoming(name: string, etag: string, target: string): Promise<MoveResult> {
    const source = this.container.getBlobClient(PREFIX.incoming + name);
    const copy = this.container.getBlobClient(target);
    if (!(await this.isCopyOf(copy, etag))) {
      try {
        const poller = await copy.beginCopyFromURL(source.url, {
          sourceConditions: { ifMatch: etag },
          metadata: { [SOURCE_ETAG_METADATA]: plainEtag(etag) },
        });
        await poller.pollUntilDone();
      } catch (error) {
        // 404/412: the source is gone or was replaced; a racing worker may have copied it first.
        const status = statusOf(error);
        if (status !== 404 && status !== 412) throw error;
        if (!(await this.isCopyOf(copy, etag))) {
          // Only a source that really changed is superseded; anything else is a failure to retry.
          if ((await this.incomingProperties(name))?.etag === etag) throw error;
          return 'superseded';
        }
      }
    }
    try {
      await source.delete({ conditions: { ifMatch: etag } });
    } catch (error) {
      // 404: already deleted by an earlier attempt; 412: replaced by a newer upload with its own event.
      const status = statusOf(error);
      if (status !== 404 && status !== 412) throw error;
    }
    return 'moved';
  }

  private async isCopyOf(copy: BlobClient, etag: string): Promise<boolean> {
    try {
      const props = await copy.getProperties();
      return props.metadata?.[SOURCE_ETAG_METADATA] === plainEtag(etag) && props.copyStatus !== 'pending';
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}
