import { deserializeModel } from '../model/artifact';
import type { TrainedModel } from '../model/trainedModel';
import type { PipelineContext } from './context';

/**
 * Versions are immutable, so a loaded model can be reused for as long as the process lives.
 * Artifacts are tens of MB: keep only the few most recent (champion and challenger).
 */
const MAX_CACHED = 3;
const cache = new Map<string, Promise<TrainedModel>>();

export function loadModelVersion(
  ctx: PipelineContext,
  modelName: string,
  versionId: string,
): Promise<TrainedModel> {
  const key = `${ctx.registry.containerName}/${modelName}/${versionId}`;
  let loading = cache.get(key);
  if (!loading) {
    loading = ctx.registry.downloadArtifact(modelName, versionId).then((text) => deserializeModel(text));
    loading.catch(() => cache.delete(key));
    cache.set(key, loading);
    while (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value as string);
  }
  return loading;
}
