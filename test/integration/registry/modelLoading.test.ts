import { loadSettings } from '../../../shared/config';
import { ModelInvalidError } from '../../../shared/errors';
import { generateWeek } from '../../../shared/invoices/generator';
import type { ParsedRecord } from '../../../shared/invoices/parser';
import type { InvoiceRow } from '../../../shared/invoices/schema';
import { evaluateRows } from '../../../shared/model/evaluation';
import { trainFromRows } from '../../../shared/model/training';
import { loadChampion, loadModel } from '../../../shared/pipeline/modelCache';
import { trainDeclaredModel } from '../../../shared/pipelines/declaredModel';
import { loadPipelineManifest, type PipelineDefinition } from '../../../shared/pipelines/manifest';
import { scoreBatchForPipelines } from '../../../shared/pipelines/multiScoring';
import { ArtifactIntegrityError } from '../../../shared/registry/integrity';
import { testStorage } from '../../support/storage';
import { freshRegistry } from './fixtures';

const manifest = loadPipelineManifest({
  ...loadSettings({ DataStorage: 'UseDevelopmentStorage=true' }),
  PIPELINES_FILE: `${__dirname}/../../../pipelines.sample.json`,
});
const [VAT, ACCOUNT] = manifest.pipelines as [PipelineDefinition, PipelineDefinition];
const world = { scenario: 'stable' as const, weeks: 2, rowsPerWeek: 800, seed: 9 };
const TRAIN: InvoiceRow[] = [...generateWeek(world, 0)];
const LATER: InvoiceRow[] = [...generateWeek(world, 1)];
const accepted = (rows: InvoiceRow[]): ParsedRecord[] =>
  rows.map((row, i) => ({ kind: 'accepted', rowNumber: i + 1, row }));

async function overwrite(containerName: string, name: string, text: string): Promise<void> {
  await testStorage()
    .blobs.getContainerClient(containerName)
    .getBlockBlobClient(name)
    .upload(text, Buffer.byteLength(text));
}

describe('one loader for champions of either format', () => {
  it('loads a single-model champion and a declared one as predictors that score like the originals', async () => {
    const registry = await freshRegistry();
    const single = await trainFromRows(TRAIN, {
      trees: 4,
      maxFeatures: 'sqrt',
      minSamplesLeaf: 1,
      maxDepth: 16,
      seed: 2,
      modelName: VAT.name,
      versionId: 'v1',
      threads: 1,
    });
    await registry.putVersion(single.metadata, single.artifact);
    await registry.promote(VAT.name, 'v1', { reason: 'first', expectedChampion: null });
    const declared = await trainDeclaredModel(ACCOUNT, accepted(TRAIN), {
      seed: 2,
      versionId: 'a1',
      dataWindow: ['w0.csv'],
    });
    await registry.putVersion(declared.model.metadata, declared.artifact);
    await registry.promote(ACCOUNT.name, 'a1', { reason: 'first', expectedChampion: null });

    const vat = await loadChampion(registry, VAT.name);
    const account = await loadChampion(registry, ACCOUNT.name);
    expect(vat).toMatchObject({ format: 'single', metadata: { versionId: 'v1' } });
    expect(account).toMatchObject({ format: 'declared', metadata: { versionId: 'a1' } });
    expect(await loadChampion(registry, 'no-such-model')).toBeNull();

    const { outcomes } = await scoreBatchForPipelines(accepted(LATER), [
      { pipeline: VAT, champion: vat },
      { pipeline: ACCOUNT, champion: account },
    ]);
    const alone = evaluateRows(single.model, LATER);
    expect(outcomes[0]).toMatchObject({ kind: 'scored', score: { accuracy: alone.accuracy } });
    const direct = await scoreBatchForPipelines(accepted(LATER), [
      { pipeline: ACCOUNT, champion: declared.model },
    ]);
    expect(outcomes[1]).toEqual(direct.outcomes[0]);
  });

  it('refuses a tampered artifact, a pointer hash that differs, and an artifact stored under another name', async () => {
    const registry = await freshRegistry();
    const declared = await trainDeclaredModel(ACCOUNT, accepted(TRAIN), {
      seed: 3,
      versionId: 'a1',
      dataWindow: ['w0.csv'],
    });
    await registry.putVersion(declared.model.metadata, declared.artifact);
    // The same bytes stored as another version: valid hash, wrong identity.
    await registry.putVersion({ ...declared.model.metadata, versionId: 'a2' }, declared.artifact);
    await expect(loadModel(registry, ACCOUNT.name, 'a2')).rejects.toThrow(
      /stored as account-code\/a2 says it is/,
    );
    await expect(loadModel(registry, ACCOUNT.name, 'a2')).rejects.toBeInstanceOf(ModelInvalidError);

    const loaded = await loadModel(registry, ACCOUNT.name, 'a1');
    // Cached, but the champion pointer's hash is still checked on every use.
    await expect(
      loadModel(registry, ACCOUNT.name, 'a1', { expectedSha256: '0'.repeat(64) }),
    ).rejects.toBeInstanceOf(ArtifactIntegrityError);
    expect(await loadModel(registry, ACCOUNT.name, 'a1', { expectedSha256: loaded.sha256 })).toBe(loaded);

    // A fresh version overwritten in place is refused by the version record's hash.
    await registry.putVersion(
      { ...declared.model.metadata, versionId: 'a3' },
      declared.artifact.replace('a1', 'a3'),
    );
    const tampered = declared.artifact.replace('a1', 'a3').replace('"seed":3', '"seed":4');
    await overwrite(registry.containerName, `${ACCOUNT.name}/versions/a3/model.json`, tampered);
    await expect(loadModel(registry, ACCOUNT.name, 'a3')).rejects.toBeInstanceOf(ArtifactIntegrityError);
  });
});
