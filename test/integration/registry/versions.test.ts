import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ConflictError, NotFoundError, ValidationError } from '../../../shared/errors';
import { ModelRegistry } from '../../../shared/registry';
import { testStorage, uniqueName } from '../../support/storage';
import { freshRegistry, metadataFor } from './fixtures';

async function blobText(registry: ModelRegistry, name: string): Promise<string> {
  return (
    await testStorage()
      .blobs.getContainerClient(registry.containerName)
      .getBlockBlobClient(name)
      .downloadToBuffer()
  ).toString('utf8');
}

describe('ModelRegistry versions', () => {
  it('stores versions, reads them back and lists them newest first', async () => {
    const registry = await freshRegistry();
    const model = 'vat-rate';
    // Multi-byte text checks that decoding never splits a character.
    const artifact = JSON.stringify({ trees: ['ø', 'ü', '€'], note: 'Ω'.repeat(10_000) });
    await registry.putVersion(metadataFor(model, 'v1', { hour: 1 }), artifact);
    await registry.putVersion(metadataFor(model, 'v3', { hour: 3 }), Buffer.from('{"b":3}'));
    await registry.putVersion(
      metadataFor(model, 'v2', { hour: 2 }),
      Readable.from([Buffer.from('{"c":'), '2}']),
    );
    await registry.putVersion(metadataFor('other-model', 'v9', { hour: 9 }), '{}');

    expect(await registry.getVersionMetadata(model, 'v1')).toStrictEqual(
      metadataFor(model, 'v1', { hour: 1 }),
    );
    expect(await registry.downloadArtifact(model, 'v1')).toBe(artifact);
    expect(await registry.downloadArtifact(model, 'v2')).toBe('{"c":2}');
    expect(await registry.downloadArtifact(model, 'v3')).toBe('{"b":3}');
    expect((await registry.listVersions(model)).map((v) => v.versionId)).toEqual(['v3', 'v2', 'v1']);
    expect((await registry.listVersions('other-model')).map((v) => v.versionId)).toEqual(['v9']);
    expect(await registry.listVersions('no-such-model')).toEqual([]);

    await expect(registry.getVersionMetadata(model, 'v4')).rejects.toBeInstanceOf(NotFoundError);
    await expect(registry.downloadArtifact(model, 'v4')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('never overwrites a version: a second put of the same id is a ConflictError', async () => {
    const registry = await freshRegistry();
    await registry.putVersion(metadataFor('vat-rate', 'v1'), 'original');
    const again = metadataFor('vat-rate', 'v1', { holdoutMetrics: { accuracy: 0.99, macroF1: 0.99 } });
    await expect(registry.putVersion(again, 'replacement')).rejects.toBeInstanceOf(ConflictError);
    await expect(registry.putVersion(again, Readable.from(['replacement']))).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    expect(await registry.downloadArtifact('vat-rate', 'v1')).toBe('original');
    expect((await registry.getVersionMetadata('vat-rate', 'v1')).holdoutMetrics.accuracy).toBe(0.91);
  });

  it('keeps two concurrent puts of one id from both succeeding', async () => {
    const registry = await freshRegistry();
    const results = await Promise.allSettled([
      registry.putVersion(metadataFor('vat-rate', 'v1', { sizeBytes: 1 }), 'first'),
      registry.putVersion(metadataFor('vat-rate', 'v1', { sizeBytes: 2 }), 'second'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect(rejected?.status === 'rejected' && rejected.reason).toBeInstanceOf(ConflictError);
    // Whoever won wrote both blobs: the stored pair is consistent.
    const stored = await registry.getVersionMetadata('vat-rate', 'v1');
    expect(await registry.downloadArtifact('vat-rate', 'v1')).toBe(
      stored.sizeBytes === 1 ? 'first' : 'second',
    );
  });

  it('rejects invalid metadata and unsafe names before writing anything', async () => {
    const registry = await freshRegistry();
    const bad = [
      metadataFor('vat-rate', 'v1', { holdoutMetrics: { accuracy: 1.5, macroF1: 0.5 } }),
      metadataFor('vat-rate', '../champion'),
      metadataFor('vat-rate', '..'),
      metadataFor('Vat/Rate', 'v1'),
      { ...metadataFor('vat-rate', 'v1'), classes: [] },
    ];
    for (const metadata of bad) {
      await expect(registry.putVersion(metadata, '{}')).rejects.toBeInstanceOf(ValidationError);
    }
    await expect(registry.putVersion(bad[0], '{}')).rejects.toThrow(/holdoutMetrics\.accuracy/);
    const container = testStorage().blobs.getContainerClient(registry.containerName);
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat()) names.push(blob.name);
    expect(names).toEqual([]);
    await expect(registry.getVersionMetadata('vat-rate', '../../x')).rejects.toBeInstanceOf(ValidationError);
    await expect(registry.downloadArtifact('../vat-rate', 'v1')).rejects.toBeInstanceOf(ValidationError);
  });

  it('rejects stored metadata that is malformed or names another version', async () => {
    const registry = await freshRegistry();
    const container = testStorage().blobs.getContainerClient(registry.containerName);
    await container.getBlockBlobClient('vat-rate/versions/v1/metadata.json').upload('{not json', 9);
    const moved = JSON.stringify(metadataFor('vat-rate', 'v9'));
    await container.getBlockBlobClient('vat-rate/versions/v2/metadata.json').upload(moved, moved.length);
    await expect(registry.getVersionMetadata('vat-rate', 'v1')).rejects.toThrow(/not JSON/);
    await expect(registry.getVersionMetadata('vat-rate', 'v2')).rejects.toThrow(/names vat-rate\/v9/);
  });

  it('does not list a version whose upload stopped before its metadata (simulated crash)', async () => {
    const registry = await freshRegistry();
    await registry.putVersion(metadataFor('vat-rate', 'v1'), '{"complete":true}');
    const container = testStorage().blobs.getContainerClient(registry.containerName);
    await container.getBlockBlobClient('vat-rate/versions/v2/model.json').upload('{"half":', 8);

    expect((await registry.listVersions('vat-rate')).map((v) => v.versionId)).toEqual(['v1']);
    await expect(registry.getVersionMetadata('vat-rate', 'v2')).rejects.toBeInstanceOf(NotFoundError);
    await expect(registry.downloadArtifact('vat-rate', 'v2')).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      registry.promote('vat-rate', 'v2', { reason: 'x', expectedChampion: null }),
    ).rejects.toBeInstanceOf(NotFoundError);
    // The id stays burnt: reusing it would overwrite what a crashed writer left.
    await expect(registry.putVersion(metadataFor('vat-rate', 'v2'), '{}')).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { incomplete: true },
    });
    expect(await blobText(registry, 'vat-rate/versions/v2/model.json')).toBe('{"half":');
  });

  it('does not list a version whose artifact stream failed midway', async () => {
    const registry = await freshRegistry();
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(5 * 1024 * 1024, 'a');
      throw new Error('training container died');
    }
    await expect(
      registry.putVersion(metadataFor('vat-rate', 'v1'), Readable.from(failing())),
    ).rejects.toThrow();
    expect(await registry.listVersions('vat-rate')).toEqual([]);
  });

  it('round-trips a 30 MB artifact by stream', async () => {
    const registry = await freshRegistry();
    const chunkBytes = 1024 * 1024;
    const chunks = 30;
    const uploadHash = createHash('sha256');
    function* artifact(): Generator<Buffer> {
      for (let i = 0; i < chunks; i++) {
        // Distinct content per chunk so a reordered or repeated block changes the hash.
        const chunk = Buffer.alloc(chunkBytes, `{"tree":${i},"split":[${i * 7},${i * 13}]},`);
        uploadHash.update(chunk);
        yield chunk;
      }
    }
    await registry.putVersion(
      metadataFor('vat-rate', 'big', { sizeBytes: chunkBytes * chunks }),
      Readable.from(artifact()),
    );

    // The hash recorded while streaming is the hash of every byte, in order.
    expect(await registry.getArtifactSha256('vat-rate', 'big')).toBe(uploadHash.digest('hex'));
    const text = await registry.downloadArtifact('vat-rate', 'big');
    expect(text.length).toBe(chunkBytes * chunks);
  });

  it('says the container is missing instead of pretending the model is empty', async () => {
    const registry = new ModelRegistry(testStorage().blobs, { containerName: uniqueName('absent') });
    await expect(registry.listVersions('vat-rate')).rejects.toThrow(/ensureContainer/);
    await expect(registry.getChampion('vat-rate')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(registry.putVersion(metadataFor('vat-rate', 'v1'), '{}')).rejects.toThrow(/ensureContainer/);
  });
});
