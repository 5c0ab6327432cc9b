import { z } from 'zod';
import { parseWith } from '../validation';

/**
 * Model names and version ids become blob path segments, so they are checked before any path is
 * built: no slashes, no `.`/`..` segments, nothing a URL normaliser could rewrite into another path.
 */
export const REGISTRY_MODEL_NAME_SCHEMA = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'model names are 2-63 lowercase letters, digits and dashes');

export const REGISTRY_VERSION_ID_SCHEMA = z
  .string()
  .regex(
    /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,79}$/,
    'version ids are 1-80 of A-Z a-z 0-9 . _ - not starting with a dot',
  );

export function checkModelName(modelName: unknown): string {
  return parseWith(REGISTRY_MODEL_NAME_SCHEMA, modelName, 'model name');
}

export function checkVersionId(versionId: unknown): string {
  return parseWith(REGISTRY_VERSION_ID_SCHEMA, versionId, 'version id');
}

/** Blob names inside the registry container; every argument must already be checked. */
export const registryPaths = {
  versionsPrefix: (modelName: string): string => `${modelName}/versions/`,
  artifact: (modelName: string, versionId: string): string => `${modelName}/versions/${versionId}/model.json`,
  metadata: (modelName: string, versionId: string): string =>
    `${modelName}/versions/${versionId}/metadata.json`,
  champion: (modelName: string): string => `${modelName}/champion.json`,
  historyPrefix: (modelName: string): string => `${modelName}/history/`,
  // Zero-padded so the lexical blob listing is also the sequence order.
  history: (modelName: string, sequence: number): string =>
    `${modelName}/history/${String(sequence).padStart(10, '0')}.json`,
};

export const METADATA_FILE_NAME = 'metadata.json';
