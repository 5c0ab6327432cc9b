import { ModelInvalidError, NotFoundError } from '../../shared/errors';
import { parseModelArtifact } from '../../shared/pipeline/modelCache';
import type { ModelRegistry } from '../../shared/registry';
import type { ServingModel } from './server';

/** Which version to serve: the one the orchestrator pinned, or whatever is champion at start. */
export type ModelChoice = { kind: 'pinned'; versionId: string } | { kind: 'champion' };

/**
 * Downloads and checks the version to serve, in either artifact format: the single-model one or a
 * declared pipeline's (which brings its own encoding, so the API reads rows as that model was
 * trained to). The artifact carries its own copy of the metadata; the two must name the same
 * version, so a blob copied under the wrong id is refused rather than served under a name it does
 * not have. The SHA-256 checks are the registry's, the same for both formats.
 */
export async function loadServingModel(
  registry: ModelRegistry,
  modelName: string,
  choice: ModelChoice,
): Promise<ServingModel> {
  let versionId: string;
  // The champion pointer's own record of the artifact hash, checked beside the version record's.
  let expectedSha256: string | undefined;
  if (choice.kind === 'pinned') {
    versionId = choice.versionId;
  } else {
    const champion = await registry.getChampion(modelName);
    if (!champion) {
      throw new NotFoundError(`${modelName} has no champion yet; set MODEL_VERSION to serve a version`);
    }
    versionId = champion.pointer.versionId;
    expectedSha256 = champion.pointer.artifactSha256;
  }
  const metadata = await registry.getVersionMetadata(modelName, versionId);
  // Read fresh, never from the process's model cache: what is served is the stored bytes as they
  // are now, checked against the hashes. One parser for both formats; a single-model artifact keeps
  // its own encoder, the API's fast path for the VAT-rate columns.
  const parsed = parseModelArtifact(
    await registry.downloadArtifact(modelName, versionId, { expectedSha256 }),
  );
  const { model } = parsed;
  if (model.metadata.modelName !== modelName || model.metadata.versionId !== versionId) {
    throw new ModelInvalidError(
      `Artifact stored as ${modelName}/${versionId} says it is ${model.metadata.modelName}/${model.metadata.versionId}`,
    );
  }
  return { model, metadata };
}
