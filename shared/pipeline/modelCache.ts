import { ModelInvalidError } from '../errors';
import { deserializeModel } from '../model/artifact';
import type { ModelMetadata } from '../model/metadata';
import type { TrainedModel } from '../model/trainedModel';
import {
  DECLARED_ARTIFACT_FORMAT,
  deserializeDeclaredModel,
  type DeclaredModel,
} from '../pipelines/declaredModel';
import { legacyPredictor, type DeclaredPredictor } from '../pipelines/multiScoring';
import type { ModelRegistry } from '../registry';
import { ArtifactIntegrityError, sha256Hex } from '../registry/integrity';

/**
 * The one loader of registry versions, whatever their format: a champion trained before pipelines
 * were declared (the single-model artifact) or a declared pipeline's. Both come back as a
 * `DeclaredPredictor` with the version's metadata, so every scorer (batch evaluation, comparison,
 * the model API) reads rows the model's own way without asking which format it is.
 */
export type LoadedModel = DeclaredPredictor & {
  readonly metadata: ModelMetadata;
  readonly sha256: string;
} & ({ readonly format: 'single'; readonly single: TrainedModel } | { readonly format: 'declared' });

/** Parses an artifact of either format (sealed artifacts start with their format, so one parse). */
export function parseModelArtifact(
  text: string,
): { format: 'single'; model: TrainedModel } | { format: 'declared'; model: DeclaredModel } {
  return text.startsWith(`{"format":"${DECLARED_ARTIFACT_FORMAT}"`)
    ? { format: 'declared', model: deserializeDeclaredModel(text) }
    : { format: 'single', model: deserializeModel(text) };
}

/**
 * Versions are immutable, so a loaded model can be reused for as long as the process lives.
 * Artifacts are tens of MB: keep only the most recent few per model (its champion and a
 * challenger), so a deployment of many pipelines keeps each one's champion without reloading it
 * for every batch, and a long-lived process does not collect every version it ever scored.
 */
const PER_MODEL = 2;
const cache = new Map<string, Promise<{ etag: string; model: LoadedModel }>>();

/**
 * Downloads (SHA-256 checked against the version record, and against `expectedSha256` — the
 * champion pointer's — when given) and parses `modelName/versionId`. An artifact whose own metadata
 * names another version is refused rather than scored under a name it does not have. A cached copy
 * is reused only while the artifact blob's ETag is unchanged, so bytes overwritten after a load are
 * downloaded and checked again (and refused) rather than served from memory.
 */
export async function loadModel(
  registry: ModelRegistry,
  modelName: string,
  versionId: string,
  options: { expectedSha256?: string } = {},
): Promise<LoadedModel> {
  const prefix = `${registry.containerName}/${modelName}/`;
  const key = prefix + versionId;
  const etag = await registry.artifactEtag(modelName, versionId);
  let loading = cache.get(key);
  if (!loading || (await loading.catch(() => null))?.etag !== etag) {
    const fresh = download(registry, modelName, versionId).then((model) => ({ etag, model }));
    loading = fresh;
    fresh.catch(() => {
      if (cache.get(key) === fresh) cache.delete(key);
    });
    cache.delete(key);
    cache.set(key, fresh);
    const ofModel = [...cache.keys()].filter((k) => k.startsWith(prefix));
    for (const stale of ofModel.slice(0, Math.max(0, ofModel.length - PER_MODEL))) cache.delete(stale);
  }
  const { model } = await loading;
  // The champion pointer's hash is checked on every use, cached or not.
  if (options.expectedSha256 !== undefined && options.expectedSha256 !== model.sha256) {
    throw new ArtifactIntegrityError(
      `${modelName}/${versionId}`,
      'champion pointer',
      options.expectedSha256,
      model.sha256,
    );
  }
  return model;
}

async function download(registry: ModelRegistry, modelName: string, versionId: string): Promise<LoadedModel> {
  const text = await registry.downloadArtifact(modelName, versionId);
  const parsed = parseModelArtifact(text);
  const { metadata } = parsed.model;
  if (metadata.modelName !== modelName || metadata.versionId !== versionId) {
    throw new ModelInvalidError(
      `Artifact stored as ${modelName}/${versionId} says it is ${metadata.modelName}/${metadata.versionId}`,
    );
  }
  const sha256 = sha256Hex(text);
  if (parsed.format === 'declared') {
    const { encoder, forest } = parsed.model;
    return { format: 'declared', encoder, forest, metadata, sha256 };
  }
  return { format: 'single', single: parsed.model, ...legacyPredictor(parsed.model), metadata, sha256 };
}

/** The current champion of `modelName`, loaded and checked against its pointer; null without one. */
export async function loadChampion(registry: ModelRegistry, modelName: string): Promise<LoadedModel | null> {
  const champion = await registry.getChampion(modelName);
  if (!champion) return null;
  return loadModel(registry, modelName, champion.pointer.versionId, {
    expectedSha256: champion.pointer.artifactSha256,
  });
}
