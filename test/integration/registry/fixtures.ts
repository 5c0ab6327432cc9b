import type { ModelMetadata } from '../../../shared/model/metadata';
import { ModelRegistry } from '../../../shared/registry';
import { testStorage, uniqueName } from '../../support/storage';

/** A registry on its own fresh container, so tests never see each other's models. */
export async function freshRegistry(): Promise<ModelRegistry> {
  const registry = new ModelRegistry(testStorage().blobs, { containerName: uniqueName('models') });
  await registry.ensureContainer();
  return registry;
}

/** Valid metadata; trainedAt is derived from `hour` so list order is known in advance. */
export function metadataFor(
  modelName: string,
  versionId: string,
  overrides: Partial<ModelMetadata> & { hour?: number } = {},
): ModelMetadata {
  const { hour = 0, ...rest } = overrides;
  return {
    modelName,
    versionId,
    trainedAt: new Date(Date.UTC(2024, 0, 1, hour)).toISOString(),
    featureSchemaVersion: 'v1',
    algorithm: 'random-forest',
    hyperparameters: { trees: 50, maxFeatures: 'sqrt', maxDepth: 32 },
    dataWindow: ['batches/2024-01-01.csv'],
    rows: { train: 4000, holdout: 1000 },
    holdoutMetrics: { accuracy: 0.91, macroF1: 0.88 },
    classes: ['0', '5.5', '9', '13', '24'],
    warmStartedFrom: null,
    trainingCpuSeconds: 12.5,
    sizeBytes: 123,
    ...rest,
  };
}
