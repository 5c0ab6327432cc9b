import type { Settings } from '../config';
import {
  findPipeline,
  loadPipelineManifest,
  type PipelineDefinition,
  type PipelineManifest,
} from './manifest';

/**
 * The pipelines a running deployment keeps fresh, read from its settings once per settings object
 * (the app-start hook has already rejected a bad file, so this does not fail in a handler). Keyed
 * by the settings object rather than stored on the context, so a context copied with other
 * settings (another MODEL_NAME or PIPELINES_FILE) sees its own pipelines.
 */
const manifests = new WeakMap<Settings, PipelineManifest>();

export function deployedPipelines(settings: Settings): PipelineManifest {
  let manifest = manifests.get(settings);
  if (!manifest) {
    manifest = loadPipelineManifest(settings);
    manifests.set(settings, manifest);
  }
  return manifest;
}

/** The declared pipeline of `modelName`, or a ConfigError naming the declared ones. */
export function deployedPipeline(settings: Settings, modelName: string): PipelineDefinition {
  return findPipeline(deployedPipelines(settings), modelName);
}
