import { loadSettings } from '../../../shared/config';
import { ModelInvalidError, ValidationError } from '../../../shared/errors';
import { generateWeek } from '../../../shared/invoices/generator';
import type { ParsedRecord } from '../../../shared/invoices/parser';
import type { InvoiceRow } from '../../../shared/invoices/schema';
import { deserializeDeclaredModel, trainDeclaredModel } from '../../../shared/pipelines/declaredModel';
import { loadPipelineManifest, type PipelineDefinition } from '../../../shared/pipelines/manifest';
import { scoreBatchForPipelines } from '../../../shared/pipelines/multiScoring';

const manifest = loadPipelineManifest({
  ...loadSettings({ DataStorage: 'UseDevelopmentStorage=true' }),
  PIPELINES_FILE: `${__dirname}/../../../pipelines.sample.json`,
});
const ACCOUNT = {
  ...(manifest.pipelines[1] as PipelineDefinition),
  forest: { trees: 6, maxFeatures: 'sqrt' as const, minSamplesLeaf: 1, maxDepth: 20 },
};
const options = { scenario: 'stable' as const, weeks: 3, rowsPerWeek: 1500, seed: 9 };

function accepted(rows: Iterable<InvoiceRow>): ParsedRecord[] {
  return Array.from(rows, (row, i) => ({ kind: 'accepted' as const, rowNumber: i + 1, row }));
}

describe('declared model artifact', () => {
  it('trains, seals its own size, and loads back predicting exactly as trained', async () => {
    const records = accepted(generateWeek(options, 0));
    records.push({ kind: 'rejected', rowNumber: 0, reason: 'bad', issues: [] });
    const trained = await trainDeclaredModel(ACCOUNT, records, {
      seed: 4,
      versionId: 'a1',
      dataWindow: ['w0.csv'],
      threads: 1,
      now: () => new Date('2024-07-08T00:00:00Z'),
    });
    expect(trained.rowsRejected).toBe(1);
    expect(trained.model.metadata).toMatchObject({
      modelName: 'account-code',
      versionId: 'a1',
      trainedAt: '2024-07-08T00:00:00.000Z',
      featureSchemaVersion: trained.model.encoder.version,
      dataWindow: ['w0.csv'],
      sizeBytes: Buffer.byteLength(trained.artifact),
      holdoutMetrics: { accuracy: trained.holdout.accuracy, macroF1: trained.holdout.macroF1 },
    });
    expect(trained.model.metadata.rows.train + trained.model.metadata.rows.holdout).toBe(1500);
    expect(trained.holdout.accuracy).toBeGreaterThan(0.75);

    const loaded = deserializeDeclaredModel(trained.artifact);
    // The measured CPU is the version record's, not the artifact's: same inputs, same bytes.
    expect(loaded.metadata).toEqual({ ...trained.model.metadata, trainingCpuSeconds: null });
    expect(trained.model.metadata.trainingCpuSeconds).toBeGreaterThan(0);
    const again = await trainDeclaredModel(ACCOUNT, records, {
      seed: 4,
      versionId: 'a1',
      dataWindow: ['w0.csv'],
      threads: 1,
      now: () => new Date('2024-07-08T00:00:00Z'),
    });
    expect(again.artifact).toBe(trained.artifact);
    const later = accepted(generateWeek(options, 2));
    const [original, restored] = (
      await scoreBatchForPipelines(later, [
        { pipeline: ACCOUNT, champion: trained.model },
        { pipeline: { ...ACCOUNT, name: 'restored' }, champion: loaded },
      ])
    ).outcomes;
    expect(original.kind === 'scored' && restored.kind === 'scored').toBe(true);
    if (original.kind === 'scored' && restored.kind === 'scored')
      expect(restored.score).toEqual(original.score);
  });

  it('refuses truncated, relabelled or inconsistent artifacts, and training without enough rows', async () => {
    const { artifact } = await trainDeclaredModel(ACCOUNT, accepted(generateWeek(options, 0)), {
      seed: 4,
      versionId: 'a1',
      dataWindow: [],
      threads: 1,
    });
    expect(() => deserializeDeclaredModel(artifact.slice(0, -10))).toThrow(ModelInvalidError);
    const json = JSON.parse(artifact) as {
      metadata: { featureSchemaVersion: string; classes: string[] };
      forest: { features: number };
    };
    expect(() =>
      deserializeDeclaredModel(
        JSON.stringify({
          ...json,
          metadata: { ...json.metadata, featureSchemaVersion: 'declared-features/1:beef' },
        }),
      ),
    ).toThrow(/Declared model a1 is inconsistent: metadata says encoding declared-features\/1:beef/);
    expect(() =>
      deserializeDeclaredModel(
        JSON.stringify({ ...json, forest: { ...json.forest, features: json.forest.features - 1 } }),
      ),
    ).toThrow(/the forest reads \d+ features, the encoder makes \d+/);
    expect(() =>
      deserializeDeclaredModel(
        JSON.stringify({ ...json, metadata: { ...json.metadata, classes: json.metadata.classes.slice(1) } }),
      ),
    ).toThrow('metadata classes differ from the forest classes');
    await expect(
      trainDeclaredModel(ACCOUNT, accepted([...generateWeek(options, 0)].slice(0, 1)), {
        seed: 1,
        versionId: 'x',
        dataWindow: [],
      }),
    ).rejects.toThrow(ValidationError);
  });
});
