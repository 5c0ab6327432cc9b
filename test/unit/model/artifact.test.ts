import { ModelInvalidError } from '../../../shared/errors';
import { deserializeModel, serializeModel } from '../../../shared/model/artifact';
import { MODEL_METADATA_SCHEMA } from '../../../shared/model/metadata';
import { predictRows } from '../../../shared/model/trainedModel';
import { trainFromRows, type TrainingResult } from '../../../shared/model/training';
import { syntheticRows } from './syntheticInvoices';

let trained: TrainingResult;
const rows = syntheticRows({ rows: 1500, seed: 21, suppliers: 30 });
const unseen = rows.slice(0, 50).map((r, i) => ({ ...r, supplierId: `NEW${i}`, currency: 'CHF' }));

beforeAll(async () => {
  trained = await trainFromRows(rows, {
    trees: 5,
    maxFeatures: 'sqrt',
    minSamplesLeaf: 2,
    maxDepth: 20,
    seed: 3,
    modelName: 'vat',
    versionId: 'round-trip',
    threads: 1,
  });
});

function expectInvalid(text: string, message: RegExp): void {
  let caught: unknown;
  try {
    deserializeModel(text);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ModelInvalidError);
  expect((caught as ModelInvalidError).code).toBe('MODEL_INVALID');
  expect((caught as ModelInvalidError).message).toMatch(message);
}

type Artifact = {
  formatVersion: number;
  metadata: { featureSchemaVersion: string; classes: string[] };
  forest: { trees: { feature: string; threshold: string; child: string; leafValues: string }[] };
};
function edited(edit: (artifact: Artifact) => void): string {
  const artifact = JSON.parse(trained.artifact) as Artifact;
  edit(artifact);
  return JSON.stringify(artifact);
}

describe('model artifact', () => {
  it('round-trips to identical predictions, probabilities included', () => {
    const loaded = deserializeModel(trained.artifact);
    const sample = [...rows.slice(0, 300), ...unseen];
    expect(predictRows(loaded, sample)).toEqual(predictRows(trained.model, sample));
    // The measured CPU is kept beside the artifact, not in it, so equal trainings give equal bytes.
    expect(loaded.metadata).toEqual({ ...trained.metadata, trainingCpuSeconds: null });
    expect(serializeModel(loaded)).toBe(trained.artifact);
  });

  it('states its own size and valid metadata', () => {
    expect(trained.metadata.sizeBytes).toBe(Buffer.byteLength(trained.artifact));
    expect(MODEL_METADATA_SCHEMA.parse(trained.metadata)).toEqual(trained.metadata);
  });

  it('rejects truncated or non-JSON text', () => {
    expectInvalid(trained.artifact.slice(0, trained.artifact.length - 100), /not JSON/);
    expectInvalid('', /not JSON/);
  });

  it('rejects a wrong format or feature schema version', () => {
    expectInvalid(
      edited((a) => (a.formatVersion = 2)),
      /format version 2/,
    );
    expectInvalid(
      edited((a) => (a.metadata.featureSchemaVersion = 'invoice-features/0')),
      /feature schema invoice-features\/0/,
    );
  });

  it('rejects inconsistent arrays, bad indices and mismatched classes', () => {
    const tree0 = (a: Artifact): Artifact['forest']['trees'][number] => a.forest.trees[0];
    expectInvalid(
      edited(
        (a) =>
          (tree0(a).threshold = Buffer.from(tree0(a).threshold, 'base64').subarray(2).toString('base64')),
      ),
      /different lengths/,
    );
    expectInvalid(
      edited((a) => (tree0(a).child = 'AAA')),
      /not valid base64/,
    );
    // Point the root back at itself: a walk would never end.
    expectInvalid(
      edited((a) => {
        const child = Buffer.from(tree0(a).child, 'base64');
        child.writeUInt32LE(0, 0);
        tree0(a).child = child.toString('base64');
      }),
      /invalid children/,
    );
    expectInvalid(
      edited((a) => {
        const feature = Buffer.from(tree0(a).feature, 'base64');
        feature[0] = 200;
        tree0(a).feature = feature.toString('base64');
      }),
      /unknown feature 200/,
    );
    expectInvalid(
      edited((a) => a.metadata.classes.reverse()),
      /classes differ/,
    );
    expectInvalid(
      edited((a) => (a.forest.trees = [])),
      /forest\.trees/,
    );
  });
});
