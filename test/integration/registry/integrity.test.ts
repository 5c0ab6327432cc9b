import { loadServingModel } from '../../../containers/model-api/loadModel';
import { ModelInvalidError } from '../../../shared/errors';
import { generateWeek } from '../../../shared/invoices/generator';
import { trainFromRows } from '../../../shared/model/training';
import type { ModelRegistry } from '../../../shared/registry';
import { ArtifactIntegrityError, sha256Hex } from '../../../shared/registry/integrity';
import { testStorage } from '../../support/storage';
import { freshRegistry, metadataFor } from './fixtures';

function blob(registry: ModelRegistry, name: string) {
  return testStorage().blobs.getContainerClient(registry.containerName).getBlockBlobClient(name);
}

async function blobJson(registry: ModelRegistry, name: string): Promise<Record<string, unknown>> {
  return JSON.parse((await blob(registry, name).downloadToBuffer()).toString('utf8')) as Record<
    string,
    unknown
  >;
}

/** What a writer with the training identity could do: replace a version's bytes in place. */
async function overwrite(registry: ModelRegistry, name: string, text: string): Promise<void> {
  await blob(registry, name).upload(text, Buffer.byteLength(text));
}

describe('model artifact integrity', () => {
  it('records the SHA-256 of the artifact in the version record and the champion pointer', async () => {
    const registry = await freshRegistry();
    await registry.putVersion(metadataFor('vat-rate', 'v1'), '{"trees":1}');
    await registry.putVersion(metadataFor('vat-rate', 'v2'), '{"trees":2}');
    const record = await blobJson(registry, 'vat-rate/versions/v1/metadata.json');
    expect(record.artifactSha256).toBe(sha256Hex('{"trees":1}'));
    // The metadata callers see is unchanged: the hash is the registry's business.
    expect(await registry.getVersionMetadata('vat-rate', 'v1')).toStrictEqual(metadataFor('vat-rate', 'v1'));

    await registry.promote('vat-rate', 'v1', { reason: 'first', expectedChampion: null });
    await registry.promote('vat-rate', 'v2', { reason: 'better', expectedChampion: 'v1' });
    expect((await blobJson(registry, 'vat-rate/champion.json')).artifactSha256).toBe(
      sha256Hex('{"trees":2}'),
    );
    await registry.rollback('vat-rate', { reason: 'worse in production', expectedChampion: 'v2' });
    expect((await blobJson(registry, 'vat-rate/champion.json')).artifactSha256).toBe(
      sha256Hex('{"trees":1}'),
    );
  });

  it('refuses an artifact overwritten after it was stored, with a typed, non-retryable error', async () => {
    const registry = await freshRegistry();
    await registry.putVersion(metadataFor('vat-rate', 'v1'), '{"trees":1}');
    expect(await registry.downloadArtifact('vat-rate', 'v1')).toBe('{"trees":1}');
    await overwrite(registry, 'vat-rate/versions/v1/model.json', '{"trees":666}');

    const refused = await registry.downloadArtifact('vat-rate', 'v1').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ArtifactIntegrityError);
    expect(refused).toBeInstanceOf(ModelInvalidError);
    expect(refused).toMatchObject({
      code: 'MODEL_INVALID',
      retryable: false,
      details: {
        recordedIn: 'version record',
        expectedSha256: sha256Hex('{"trees":1}'),
        actualSha256: sha256Hex('{"trees":666}'),
      },
    });
  });

  it('refuses an artifact whose hash differs from the one the champion pointer holds', async () => {
    const registry = await freshRegistry();
    await registry.putVersion(metadataFor('vat-rate', 'v1'), '{"trees":1}');
    await expect(
      registry.downloadArtifact('vat-rate', 'v1', { expectedSha256: sha256Hex('something else') }),
    ).rejects.toMatchObject({ details: { recordedIn: 'champion pointer' } });
  });

  it('refuses a version whose record has no hash, or whose record was rewritten to match other bytes', async () => {
    const registry = await freshRegistry();
    await registry.putVersion(metadataFor('vat-rate', 'v1'), '{"trees":1}');
    const { artifactSha256: _hash, ...bare } = await blobJson(registry, 'vat-rate/versions/v1/metadata.json');
    await overwrite(registry, 'vat-rate/versions/v1/metadata.json', JSON.stringify(bare));
    await expect(registry.downloadArtifact('vat-rate', 'v1')).rejects.toThrow(/has no SHA-256/);

    const forged = { ...bare, artifactSha256: 'not a hash' };
    await overwrite(registry, 'vat-rate/versions/v1/metadata.json', JSON.stringify(forged));
    await expect(registry.downloadArtifact('vat-rate', 'v1')).rejects.toThrow(/artifactSha256/);
  });

  it('keeps the model API from loading a tampered champion', async () => {
    const registry = await freshRegistry();
    const world = { scenario: 'stable' as const, weeks: 1, rowsPerWeek: 600, seed: 3 };
    const trained = await trainFromRows(generateWeek(world, 0), {
      trees: 3,
      maxFeatures: 'sqrt',
      minSamplesLeaf: 1,
      maxDepth: 8,
      seed: 1,
      modelName: 'vat-rate',
      versionId: 'v1',
      threads: 1,
    });
    await registry.putVersion(trained.metadata, trained.artifact);
    await registry.promote('vat-rate', 'v1', { reason: 'first', expectedChampion: null });
    const served = await loadServingModel(registry, 'vat-rate', { kind: 'champion' });
    expect(served.metadata.versionId).toBe('v1');

    // Still a valid model, same id, different trees: only the hash can tell.
    const tampered = trained.artifact.replace('"holdoutFraction":0.2', '"holdoutFraction":0.25');
    expect(tampered).not.toBe(trained.artifact);
    await overwrite(registry, 'vat-rate/versions/v1/model.json', tampered);
    await expect(loadServingModel(registry, 'vat-rate', { kind: 'champion' })).rejects.toBeInstanceOf(
      ArtifactIntegrityError,
    );
    await expect(
      loadServingModel(registry, 'vat-rate', { kind: 'pinned', versionId: 'v1' }),
    ).rejects.toBeInstanceOf(ArtifactIntegrityError);
  });
});
