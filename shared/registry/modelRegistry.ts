import type { BlobServiceClient, BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import type { z } from 'zod';
import { ConflictError, NotFoundError, ProviderError, ValidationError } from '../errors';
import { MODEL_METADATA_SCHEMA, type ModelMetadata } from '../model/metadata';
import { parseJsonWith, parseWith } from '../validation';
import { asReadable, mapWithLimit, readAllText } from './blobIo';
import { ArtifactIntegrityError, HashingStream, SHA256_HEX_SCHEMA, sha256Hex } from './integrity';
import {
  CHAMPION_POINTER_SCHEMA,
  CHANGE_OPTIONS_SCHEMA,
  championStack,
  HISTORY_ENTRY_SCHEMA,
  historyEntryOf,
  pointerRecords,
  type ChampionPointer,
  type HistoryEntry,
} from './champion';
import { checkModelName, checkVersionId, METADATA_FILE_NAME, registryPaths } from './names';
import { classifyBlobFailure, storageError } from './storageErrors';

export const DEFAULT_MODELS_CONTAINER = 'models';

const JSON_HEADERS = { blobContentType: 'application/json; charset=utf-8' };
const UPLOAD_BLOCK_BYTES = 4 * 1024 * 1024;
const UPLOAD_CONCURRENCY = 4;
const READ_CONCURRENCY = 8;

/**
 * `versions/{id}/metadata.json`: the model's metadata plus the SHA-256 of its artifact, so a load
 * can tell the bytes it got are the bytes that were trained (the artifact cannot hold its own hash).
 */
const VERSION_RECORD_SCHEMA = MODEL_METADATA_SCHEMA.extend({ artifactSha256: SHA256_HEX_SCHEMA.optional() });

export interface ModelRegistryOptions {
  /** Blob container holding every model; `models` unless a test wants its own. */
  containerName?: string;
}

/**
 * Model versions, the champion pointer and its history in one blob container.
 *
 * Layout (per model):
 * - `versions/{id}/model.json` then `versions/{id}/metadata.json` (the version record: metadata and
 *   the artifact's SHA-256), both created with `ifNoneMatch: '*'`. Metadata is written last and listing looks only for metadata, so a crash
 *   mid-upload leaves an unlisted artifact, never a listed version without one.
 * - `champion.json`, replaced only by compare-and-swap on its ETag.
 * - `history/{sequence}.json`, created once each with `ifNoneMatch: '*'`.
 *
 * Order of writes for a champion change: (1) write the history entry of the pointer being replaced
 * (derived from that pointer, so it is a no-op if it exists), (2) CAS the pointer, (3) write the
 * history entry of the new pointer. The pointer is the linearisation point: a history entry exists
 * only for a pointer that really was committed, so history never records an attempt that lost.
 * A crash between (2) and (3) leaves only the newest entry missing; the pointer holds all of its
 * fields, so history() shows it from the pointer and the next change writes it in step (1).
 */
export class ModelRegistry {
  readonly containerName: string;
  private readonly container: ContainerClient;

  constructor(blobs: BlobServiceClient, options: ModelRegistryOptions = {}) {
    this.containerName = options.containerName ?? DEFAULT_MODELS_CONTAINER;
    this.container = blobs.getContainerClient(this.containerName);
  }

  async ensureContainer(): Promise<void> {
    try {
      await this.container.createIfNotExists();
    } catch (error) {
      throw storageError(error, `create container ${this.containerName}`, this.containerName);
    }
  }

  /**
   * Stores a new immutable version. ConflictError if the id was ever used, including by an earlier
   * upload that crashed before its metadata (its artifact still holds the id).
   */
  async putVersion(
    metadata: ModelMetadata,
    artifact: Buffer | string | NodeJS.ReadableStream,
  ): Promise<void> {
    const checked = parseWith(MODEL_METADATA_SCHEMA, metadata, 'model metadata');
    const modelName = checkModelName(checked.modelName);
    const versionId = checkVersionId(checked.versionId);
    const label = `${modelName}/${versionId}`;
    const metadataBlob = this.blob(registryPaths.metadata(modelName, versionId));
    // Fails fast before streaming tens of MB only to lose on the artifact's condition.
    if (await this.blobExists(metadataBlob, `check version ${label}`)) {
      throw new ConflictError(`Model version ${label} already exists; versions are immutable`, {
        details: { modelName, versionId },
      });
    }

    const artifactBlob = this.blob(registryPaths.artifact(modelName, versionId));
    const conditions = { ifNoneMatch: '*' };
    let artifactSha256: string;
    try {
      if (typeof artifact === 'string' || Buffer.isBuffer(artifact)) {
        const bytes = typeof artifact === 'string' ? Buffer.from(artifact, 'utf8') : artifact;
        artifactSha256 = sha256Hex(bytes);
        await artifactBlob.uploadData(bytes, {
          conditions,
          blobHTTPHeaders: JSON_HEADERS,
          blockSize: UPLOAD_BLOCK_BYTES,
          maxSingleShotSize: UPLOAD_BLOCK_BYTES * 2,
          concurrency: UPLOAD_CONCURRENCY,
        });
      } else {
        // Blocks are staged as they arrive and committed at the end, so the whole artifact is
        // never in memory and the condition is checked on the commit.
        const hashing = new HashingStream();
        asReadable(artifact)
          .on('error', (error: Error) => hashing.destroy(error))
          .pipe(hashing);
        await artifactBlob.uploadStream(hashing, UPLOAD_BLOCK_BYTES, UPLOAD_CONCURRENCY, {
          conditions,
          blobHTTPHeaders: JSON_HEADERS,
        });
        artifactSha256 = hashing.digest();
      }
    } catch (error) {
      if (classifyBlobFailure(error)?.kind === 'already-exists') {
        throw new ConflictError(
          `Model version ${label} already has an artifact (an earlier upload of this id did not finish); use a new version id`,
          { cause: error, details: { modelName, versionId, incomplete: true } },
        );
      }
      throw storageError(error, `upload the artifact of ${label}`, this.containerName);
    }

    const body = JSON.stringify({ ...checked, artifactSha256 }, null, 2);
    try {
      await metadataBlob.upload(body, Buffer.byteLength(body), { conditions, blobHTTPHeaders: JSON_HEADERS });
    } catch (error) {
      if (classifyBlobFailure(error)?.kind === 'already-exists') {
        throw new ConflictError(`Model version ${label} was written concurrently by another writer`, {
          cause: error,
          details: { modelName, versionId },
        });
      }
      throw storageError(error, `write the metadata of ${label}`, this.containerName);
    }
  }

  async getVersionMetadata(modelName: string, versionId: string): Promise<ModelMetadata> {
    const { artifactSha256: _hash, ...metadata } = await this.readVersionRecord(modelName, versionId);
    return metadata;
  }

  private async readVersionRecord(
    modelName: string,
    versionId: string,
  ): Promise<z.output<typeof VERSION_RECORD_SCHEMA>> {
    const model = checkModelName(modelName);
    const version = checkVersionId(versionId);
    const path = registryPaths.metadata(model, version);
    const text = await this.readText(path, `model version ${model}/${version}`);
    if (text === null) throw new NotFoundError(`Model version ${model}/${version} does not exist`);
    return this.parseMetadata(text, model, version);
  }

  /** The SHA-256 recorded for a version's artifact (null for a version stored before hashes). */
  async getArtifactSha256(modelName: string, versionId: string): Promise<string | null> {
    return (await this.readVersionRecord(modelName, versionId)).artifactSha256 ?? null;
  }

  /**
   * The artifact as text, verified: its bytes must hash to the SHA-256 of the version record and,
   * when given (the champion pointer's), to `expectedSha256` too; otherwise ArtifactIntegrityError.
   * The model loads it whole anyway, so this is the one place it is buffered.
   */
  async downloadArtifact(
    modelName: string,
    versionId: string,
    options: { expectedSha256?: string } = {},
  ): Promise<string> {
    const model = checkModelName(modelName);
    const version = checkVersionId(versionId);
    const label = `${model}/${version}`;
    const record = await this.readVersionRecord(model, version);
    let bytes: Buffer;
    try {
      // maxRetryRequests lets the SDK resume a broken download from the last byte received.
      bytes = await this.blob(registryPaths.artifact(model, version)).downloadToBuffer(0, undefined, {
        maxRetryRequestsPerBlock: 5,
      });
    } catch (error) {
      throw storageError(error, `download the artifact of ${label}`, this.containerName);
    }
    const actual = sha256Hex(bytes);
    const recorded = record.artifactSha256 ?? null;
    if (recorded !== actual) throw new ArtifactIntegrityError(label, 'version record', recorded, actual);
    if (options.expectedSha256 !== undefined && options.expectedSha256 !== actual) {
      throw new ArtifactIntegrityError(label, 'champion pointer', options.expectedSha256, actual);
    }
    return bytes.toString('utf8');
  }

  /**
   * The artifact blob's ETag. Any overwrite changes it, so a process that keeps a loaded model can
   * tell, with one small request instead of a download, whether its copy is still the stored bytes.
   */
  async artifactEtag(modelName: string, versionId: string): Promise<string> {
    const model = checkModelName(modelName);
    const version = checkVersionId(versionId);
    try {
      return (await this.blob(registryPaths.artifact(model, version)).getProperties()).etag ?? '';
    } catch (error) {
      throw storageError(error, `read the artifact properties of ${model}/${version}`, this.containerName);
    }
  }

  /** Complete versions, newest `trainedAt` first (ties by version id, descending). */
  async listVersions(modelName: string): Promise<ModelMetadata[]> {
    const model = checkModelName(modelName);
    const prefix = registryPaths.versionsPrefix(model);
    const versionIds: string[] = [];
    try {
      for await (const item of this.container.listBlobsFlat({ prefix })) {
        const rest = item.name.slice(prefix.length).split('/');
        if (rest.length === 2 && rest[1] === METADATA_FILE_NAME) versionIds.push(rest[0]);
      }
    } catch (error) {
      throw storageError(error, `list versions of ${model}`, this.containerName);
    }
    const versions = await mapWithLimit(versionIds, READ_CONCURRENCY, (id) =>
      this.getVersionMetadata(model, id),
    );
    return versions.sort(
      (a, b) => Date.parse(b.trainedAt) - Date.parse(a.trainedAt) || (a.versionId < b.versionId ? 1 : -1),
    );
  }

  async getChampion(modelName: string): Promise<{ pointer: ChampionPointer; etag: string } | null> {
    const model = checkModelName(modelName);
    const blob = this.blob(registryPaths.champion(model));
    let response;
    try {
      response = await blob.download(0);
    } catch (error) {
      const failure = classifyBlobFailure(error);
      if (failure?.kind === 'not-found' && failure.what === 'blob') return null;
      throw storageError(error, `read the champion of ${model}`, this.containerName);
    }
    if (!response.readableStreamBody || !response.etag) {
      throw new ProviderError(
        'PROVIDER_RESPONSE_INVALID',
        `No body or ETag reading the champion of ${model}`,
        'blob-storage',
      );
    }
    const text = await readAllText(response.readableStreamBody);
    const pointer = parseJsonWith(CHAMPION_POINTER_SCHEMA, text, `champion pointer of ${model}`);
    return { pointer, etag: response.etag };
  }

  async promote(
    modelName: string,
    versionId: string,
    options: { reason: string; expectedChampion: string | null },
  ): Promise<ChampionPointer> {
    const model = checkModelName(modelName);
    const version = checkVersionId(versionId);
    const { reason, expectedChampion } = parseWith(CHANGE_OPTIONS_SCHEMA, options, 'promote options');
    const artifactSha256 = await this.getArtifactSha256(model, version);

    const current = await this.getChampion(model);
    const change = { action: 'promote', versionId: version, fromVersionId: expectedChampion } as const;
    if (current && pointerRecords(current.pointer, change)) return current.pointer;
    const seen = current?.pointer.versionId ?? null;
    this.requireExpected(model, seen, expectedChampion);
    if (seen === version) {
      throw new ValidationError(`${model}/${version} is already the champion`);
    }
    const next: ChampionPointer = {
      action: 'promote',
      versionId: version,
      promotedAt: new Date().toISOString(),
      reason,
      previousVersionId: seen,
      sequence: (current?.pointer.sequence ?? 0) + 1,
      ...(artifactSha256 === null ? {} : { artifactSha256 }),
    };
    return this.swapChampion(model, current, next, change);
  }

  /** Returns to the champion before the current one, as the history stacks them. */
  async rollback(
    modelName: string,
    options: { reason: string; expectedChampion: string },
  ): Promise<ChampionPointer> {
    const model = checkModelName(modelName);
    const parsed = parseWith(
      CHANGE_OPTIONS_SCHEMA.extend({
        expectedChampion: CHANGE_OPTIONS_SCHEMA.shape.expectedChampion.unwrap(),
      }),
      options,
      'rollback options',
    );
    const current = await this.getChampion(model);
    if (!current) throw new NotFoundError(`${model} has no champion to roll back`);
    const change = { action: 'rollback', versionId: null, fromVersionId: parsed.expectedChampion } as const;
    if (pointerRecords(current.pointer, change)) return current.pointer;
    this.requireExpected(model, current.pointer.versionId, parsed.expectedChampion);

    const stack = championStack(await this.historyUpTo(model, current.pointer));
    if (stack.length < 2) {
      throw new NotFoundError(
        `${model} has no earlier champion to roll back to (current: ${current.pointer.versionId})`,
      );
    }
    const target = stack[stack.length - 2];
    const artifactSha256 = await this.getArtifactSha256(model, target);
    const next: ChampionPointer = {
      action: 'rollback',
      versionId: target,
      promotedAt: new Date().toISOString(),
      reason: parsed.reason,
      previousVersionId: current.pointer.versionId,
      sequence: current.pointer.sequence + 1,
      ...(artifactSha256 === null ? {} : { artifactSha256 }),
    };
    return this.swapChampion(model, current, next, change);
  }

  /** Every committed champion change, oldest first. */
  async history(modelName: string): Promise<HistoryEntry[]> {
    const model = checkModelName(modelName);
    const current = await this.getChampion(model);
    return current ? this.historyUpTo(model, current.pointer) : [];
  }

  private requireExpected(model: string, actual: string | null, expected: string | null): void {
    if (actual === expected) return;
    throw new ConflictError(
      `The champion of ${model} is ${actual ?? 'none'}, not ${expected ?? 'none'} as expected`,
      { details: { modelName: model, expectedChampion: expected, actualChampion: actual } },
    );
  }

  private async swapChampion(
    model: string,
    current: { pointer: ChampionPointer; etag: string } | null,
    next: ChampionPointer,
    change: Parameters<typeof pointerRecords>[1],
  ): Promise<ChampionPointer> {
    if (current) await this.writeHistoryEntry(model, historyEntryOf(current.pointer));
    const body = JSON.stringify(next, null, 2);
    try {
      await this.blob(registryPaths.champion(model)).upload(body, Buffer.byteLength(body), {
        conditions: current ? { ifMatch: current.etag } : { ifNoneMatch: '*' },
        blobHTTPHeaders: JSON_HEADERS,
      });
    } catch (error) {
      const failure = classifyBlobFailure(error);
      if (failure?.kind !== 'already-exists' && failure?.kind !== 'condition-not-met') {
        throw storageError(error, `change the champion of ${model}`, this.containerName);
      }
      const winner = await this.getChampion(model).catch(() => null);
      // A concurrent twin of this very request (a retried activity) won: the outcome holds.
      if (winner && pointerRecords(winner.pointer, change)) return winner.pointer;
      const who = winner
        ? `${winner.pointer.action} of ${winner.pointer.versionId} (sequence ${winner.pointer.sequence})`
        : 'an unknown writer';
      throw new ConflictError(
        `Lost the race to change the champion of ${model} to ${next.versionId}: ${who} won`,
        {
          cause: error,
          details: {
            modelName: model,
            attempted: next.versionId,
            winner: winner?.pointer.versionId ?? null,
            winnerSequence: winner?.pointer.sequence ?? null,
          },
        },
      );
    }
    try {
      await this.writeHistoryEntry(model, historyEntryOf(next));
    } catch {
      // The change is committed; the entry is derived from the pointer, shown from it by history()
      // and written by the next change, so failing here would only make callers retry a success.
    }
    return next;
  }

  /** Creates an entry once; an existing one came from the same committed pointer, so it is equal. */
  private async writeHistoryEntry(model: string, entry: HistoryEntry): Promise<void> {
    const body = JSON.stringify(entry, null, 2);
    try {
      await this.blob(registryPaths.history(model, entry.sequence)).upload(body, Buffer.byteLength(body), {
        conditions: { ifNoneMatch: '*' },
        blobHTTPHeaders: JSON_HEADERS,
      });
    } catch (error) {
      if (classifyBlobFailure(error)?.kind === 'already-exists') return;
      throw storageError(error, `write history entry ${entry.sequence} of ${model}`, this.containerName);
    }
  }

  /**
   * History as of `pointer`: entries past its sequence belong to changes committed after the pointer
   * was read and are left out, and its own entry comes from the pointer if not yet written.
   */
  private async historyUpTo(model: string, pointer: ChampionPointer): Promise<HistoryEntry[]> {
    const prefix = registryPaths.historyPrefix(model);
    const names: string[] = [];
    try {
      for await (const item of this.container.listBlobsFlat({ prefix })) {
        const sequence = Number.parseInt(item.name.slice(prefix.length), 10);
        if (Number.isInteger(sequence) && sequence <= pointer.sequence) names.push(item.name);
      }
    } catch (error) {
      throw storageError(error, `list the history of ${model}`, this.containerName);
    }
    const entries = await mapWithLimit(names, READ_CONCURRENCY, async (name) => {
      const text = await this.readText(name, `history entry ${name}`);
      if (text === null) throw new NotFoundError(`History entry ${name} vanished while reading`);
      return parseJsonWith(HISTORY_ENTRY_SCHEMA, text, `history entry ${name}`);
    });
    entries.sort((a, b) => a.sequence - b.sequence);
    if (entries.at(-1)?.sequence !== pointer.sequence) entries.push(historyEntryOf(pointer));
    return entries;
  }

  private parseMetadata(
    text: string,
    model: string,
    version: string,
  ): z.output<typeof VERSION_RECORD_SCHEMA> {
    const metadata = parseJsonWith(VERSION_RECORD_SCHEMA, text, `metadata of ${model}/${version}`);
    if (metadata.modelName !== model || metadata.versionId !== version) {
      throw new ValidationError(
        `Metadata stored at ${model}/${version} names ${metadata.modelName}/${metadata.versionId}`,
      );
    }
    return metadata;
  }

  private blob(name: string): BlockBlobClient {
    return this.container.getBlockBlobClient(name);
  }

  private async blobExists(blob: BlockBlobClient, action: string): Promise<boolean> {
    try {
      await blob.getProperties();
      return true;
    } catch (error) {
      const failure = classifyBlobFailure(error);
      if (failure?.kind === 'not-found' && failure.what === 'blob') return false;
      throw storageError(error, action, this.containerName);
    }
  }

  /** A small JSON blob as text, or null when the blob (not the container) is missing. */
  private async readText(name: string, what: string): Promise<string | null> {
    try {
      const response = await this.blob(name).download(0);
      if (!response.readableStreamBody) {
        throw new ProviderError('PROVIDER_RESPONSE_INVALID', `No body reading ${what}`, 'blob-storage');
      }
      return await readAllText(response.readableStreamBody);
    } catch (error) {
      const failure = classifyBlobFailure(error);
      if (failure?.kind === 'not-found' && failure.what === 'blob') return null;
      throw storageError(error, `read ${what}`, this.containerName);
    }
  }
}
