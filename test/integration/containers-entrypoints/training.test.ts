import { loadServingModel } from '../../../containers/model-api/loadModel';
import { predictInvoices, servingPath } from '../../../containers/model-api/predictor';
import { parseTrainingJob } from '../../../containers/training/jobSettings';
import { EXIT_BAD_INPUT, EXIT_RUN_FAILED, exitCodeFor, failureLine } from '../../../containers/training/main';
import { runTraining, type TrainingDeps } from '../../../containers/training/runTraining';
import { loadSettings } from '../../../shared/config';
import { ConfigError } from '../../../shared/errors';
import { generateWeek } from '../../../shared/invoices/generator';
import { serializeCsv } from '../../../shared/invoices/serialize';
import { deserializeDeclaredModel, trainingDeclaration } from '../../../shared/pipelines/declaredModel';
import { findPipeline, loadPipelineManifest } from '../../../shared/pipelines/manifest';
import { InvoiceStore } from '../../../shared/pipeline/invoiceStore';
import { ModelRegistry } from '../../../shared/registry';
import { testStorage, uniqueName } from '../../support/storage';
import { invoiceRows, toCsv } from './invoiceFixtures';

interface World {
  deps: TrainingDeps;
  registry: ModelRegistry;
  env: Record<string, string>;
}

/** Fresh models and invoices containers holding `batches` as accepted batches. */
async function world(batches: Record<string, string>): Promise<World> {
  const { blobs } = testStorage();
  const deps: TrainingDeps = {
    modelsContainer: uniqueName('models'),
    invoicesContainer: uniqueName('invoices'),
    threads: 1,
  };
  const registry = new ModelRegistry(blobs, { containerName: deps.modelsContainer });
  await registry.ensureContainer();
  const store = new InvoiceStore(blobs, deps.invoicesContainer);
  await store.ensureContainer();
  for (const [name, text] of Object.entries(batches)) await acceptBatch(store, name, text);
  const env = {
    DataStorage: process.env.AZURITE_TEST_CONNECTION_STRING ?? '',
    MODEL_NAME: 'vat-rate',
    VERSION_ID: 'v1',
    DATA_BLOBS: JSON.stringify(Object.keys(batches)),
    FOREST_TREES: '8',
    FOREST_MAX_FEATURES: 'all',
    FOREST_MAX_DEPTH: '12',
    SEED: '11',
  };
  return { deps, registry, env };
}

/** The real path into accepted/: upload to incoming/, then the store's move. */
async function acceptBatch(store: InvoiceStore, name: string, text: string): Promise<void> {
  const etag = await store.upload(name, Buffer.from(text, 'utf8'));
  await store.accept(name, etag);
}

function jsonl(rows: readonly object[]): string {
  return rows.map((row) => JSON.stringify(row)).join('\n') + '\n';
}

describe('training container', () => {
  it('trains on the accepted window and stores a version with the right metadata', async () => {
    const week1 = invoiceRows(400, 1, 'w1');
    const week2 = invoiceRows(400, 2, 'w2');
    // One row with a bad country: rejected by the parser, never trained on, counted.
    const csv = toCsv(week1).replace(/,FI,/, ',XX,');
    const { deps, registry, env } = await world({ 'week-1.csv': csv, 'week-2.jsonl': jsonl(week2) });

    const summary = await runTraining(env, deps);

    expect(summary).toMatchObject({
      event: 'training-complete',
      outcome: 'trained',
      modelName: 'vat-rate',
      versionId: 'v1',
      mode: 'full',
      warmStartedFrom: null,
      dataWindow: ['week-1.csv', 'week-2.jsonl'],
      rejectedRows: 1,
      classes: ['0', '14', '24'],
    });
    expect(summary.rows.train + summary.rows.holdout).toBe(799);
    expect(summary.rows.holdout).toBeGreaterThan(100);
    expect(summary.holdoutMetrics.accuracy).toBeGreaterThan(0.95);
    expect(summary.trainingCpuSeconds).toBeGreaterThan(0);
    expect(summary.processCpuSeconds).toBeGreaterThanOrEqual(summary.trainingCpuSeconds ?? 0);

    const stored = await registry.getVersionMetadata('vat-rate', 'v1');
    expect(stored).toMatchObject({
      modelName: 'vat-rate',
      versionId: 'v1',
      dataWindow: ['week-1.csv', 'week-2.jsonl'],
      rows: summary.rows,
      holdoutMetrics: summary.holdoutMetrics,
      warmStartedFrom: null,
      sizeBytes: summary.sizeBytes,
      hyperparameters: expect.objectContaining({ trees: 8, maxFeatures: 'all', maxDepth: 12, seed: 11 }),
    });
    expect(Buffer.byteLength(await registry.downloadArtifact('vat-rate', 'v1'))).toBe(stored.sizeBytes);

    // What was stored is a model the API can load and that predicts the rule.
    const served = servingPath(
      (await loadServingModel(registry, 'vat-rate', { kind: 'pinned', versionId: 'v1' })).model,
    );
    if (served.kind !== 'single-model')
      throw new Error('a run without PIPELINE_DEFINITION stores the single-model artifact');
    const fresh = invoiceRows(100, 77);
    const predicted = predictInvoices(served.model, fresh);
    const correct = predicted.filter((p, i) => p.vatRatePercent === fresh[i].vatRatePercent).length;
    expect(correct).toBeGreaterThan(95);

    // A second start of the same job (a retried container) reports the stored version.
    const again = await runTraining(env, deps);
    expect(again).toMatchObject({ outcome: 'already-trained', versionId: 'v1', rows: summary.rows });
    expect((await registry.listVersions('vat-rate')).map((v) => v.versionId)).toEqual(['v1']);

    // The same id for a different job is refused, not reported as this job's result.
    const reused = runTraining({ ...env, SEED: '12' }, deps);
    await expect(reused).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(exitCodeFor(await reused.catch((e: unknown) => e))).toBe(EXIT_RUN_FAILED);
  });

  it('warm-starts from a stored version and records it', async () => {
    const { deps, registry, env } = await world({
      'week-1.csv': toCsv(invoiceRows(300, 1, 'w1')),
      'week-2.csv': toCsv(invoiceRows(300, 2, 'w2')),
    });
    await runTraining({ ...env, DATA_BLOBS: '["week-1.csv"]' }, deps);
    const summary = await runTraining(
      {
        ...env,
        VERSION_ID: 'v2',
        DATA_BLOBS: '["week-2.csv"]',
        TRAINING_MODE: 'warm-start',
        WARM_START_FROM: 'v1',
      },
      deps,
    );
    expect(summary).toMatchObject({ outcome: 'trained', mode: 'warm-start', warmStartedFrom: 'v1' });
    const stored = await registry.getVersionMetadata('vat-rate', 'v2');
    expect(stored.warmStartedFrom).toBe('v1');
    expect(stored.dataWindow).toEqual(['week-1.csv', 'week-2.csv']);

    const missingParent = runTraining(
      { ...env, VERSION_ID: 'v3', TRAINING_MODE: 'warm-start', WARM_START_FROM: 'v0' },
      deps,
    );
    await expect(missingParent).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(exitCodeFor(await missingParent.catch((e: unknown) => e))).toBe(EXIT_BAD_INPUT);
  });

  it('fails fast on a missing batch, naming it, and stores nothing', async () => {
    const { deps, registry, env } = await world({ 'week-1.csv': toCsv(invoiceRows(50, 1)) });
    const run = runTraining({ ...env, DATA_BLOBS: '["week-1.csv","week-9.csv","week-8.csv"]' }, deps);
    await expect(run).rejects.toMatchObject({
      code: 'NOT_FOUND',
      details: { missing: ['week-9.csv', 'week-8.csv'] },
    });
    const error = await run.catch((e: unknown) => e);
    expect(exitCodeFor(error)).toBe(EXIT_BAD_INPUT);
    expect(failureLine(error)).toMatch(
      /^training failed: NOT_FOUND: 2 of 3 batches .*week-9\.csv, week-8\.csv$/,
    );
    expect(await registry.listVersions('vat-rate')).toEqual([]);
  });

  it('rejects a bad job environment with one error naming every variable', () => {
    const attempt = (env: Record<string, string>): ConfigError => {
      try {
        parseTrainingJob(env);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        expect(exitCodeFor(error)).toBe(EXIT_BAD_INPUT);
        return error as ConfigError;
      }
      throw new Error('expected a ConfigError');
    };

    expect(attempt({}).problems.map((p) => p.key)).toEqual(['MODEL_NAME', 'VERSION_ID', 'DATA_BLOBS']);
    const bad = attempt({
      MODEL_NAME: 'VAT Rate',
      VERSION_ID: 'v1',
      DATA_BLOBS: 'week-1.csv',
      FOREST_TREES: '0',
      FOREST_MAX_FEATURES: 'half',
    });
    expect(bad.problems.map((p) => p.key)).toEqual([
      'MODEL_NAME',
      'DATA_BLOBS',
      'FOREST_TREES',
      'FOREST_MAX_FEATURES',
    ]);
    expect(bad.message).toContain('DATA_BLOBS: expected a JSON array of accepted batch names');

    const base = { MODEL_NAME: 'vat-rate', VERSION_ID: 'v1' };
    expect(attempt({ ...base, DATA_BLOBS: '["../secrets.csv"]' }).problems).toEqual([
      { key: 'DATA_BLOBS', reason: expect.stringMatching(/^\[0\] Invalid batch name/) },
    ]);
    expect(attempt({ ...base, DATA_BLOBS: '[]' }).problems[0].reason).toBe('at least one batch is required');
    expect(attempt({ ...base, DATA_BLOBS: '["a.csv","a.csv"]' }).problems[0].reason).toBe(
      'batch names must be distinct',
    );
    expect(attempt({ ...base, DATA_BLOBS: '["a.csv"]', TRAINING_MODE: 'warm-start' }).problems).toEqual([
      { key: 'WARM_START_FROM', reason: 'required with TRAINING_MODE=warm-start' },
    ]);

    expect(
      parseTrainingJob({
        ...base,
        DATA_BLOBS: ' ["a.csv","b.jsonl"] ',
        TRAINING_MODE: 'warm-start',
        WARM_START_FROM: 'v0',
        FOREST_MAX_FEATURES: '3',
        FOREST_MIN_SAMPLES_LEAF: '',
      }),
    ).toEqual({
      modelName: 'vat-rate',
      encoding: { kind: 'single-model' },
      versionId: 'v1',
      dataBlobs: ['a.csv', 'b.jsonl'],
      mode: { kind: 'warm-start', fromVersionId: 'v0' },
      forest: { trees: 50, maxFeatures: 3, minSamplesLeaf: 1, maxDepth: 32 },
      seed: 1,
      trainedAt: null,
    });
    expect(
      parseTrainingJob({ ...base, DATA_BLOBS: '["a.csv"]', TRAINED_AT: '2024-09-02T06:00:00Z' }).trainedAt,
    ).toBe('2024-09-02T06:00:00.000Z');
    expect(attempt({ ...base, DATA_BLOBS: '["a.csv"]', TRAINED_AT: 'monday' }).problems).toEqual([
      { key: 'TRAINED_AT', reason: 'expected an ISO 8601 date-time' },
    ]);
  });

  it('needs storage settings when no client is given, and never echoes the connection string', async () => {
    const job = { MODEL_NAME: 'vat-rate', VERSION_ID: 'v1', DATA_BLOBS: '["a.csv"]' };
    await expect(runTraining(job)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      problems: [expect.objectContaining({ key: 'DataStorage' })],
    });
    const secret = 'c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw==';
    const error = await runTraining({
      ...job,
      DataStorage: `UseDevelopmentStorage=nope;AccountKey=${secret}`,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', problems: [{ key: 'DataStorage' }] });
    expect(exitCodeFor(error)).toBe(EXIT_BAD_INPUT);
    expect(failureLine(error)).not.toContain(secret);
  });

  describe('a declared pipeline (PIPELINE_DEFINITION)', () => {
    const manifest = loadPipelineManifest({
      ...loadSettings({ DataStorage: 'UseDevelopmentStorage=true' }),
      PIPELINES_FILE: `${__dirname}/../../../pipelines.sample.json`,
    });
    const account = trainingDeclaration(findPipeline(manifest, 'account-code'));
    const small = { ...account, forest: { ...account.forest, trees: 5 } };
    const week = (index: number) =>
      [
        ...serializeCsv(generateWeek({ scenario: 'stable', weeks: 2, rowsPerWeek: 600, seed: 5 }, index)),
      ].join('');
    const declaredEnv = (env: Record<string, string>) => {
      const { FOREST_TREES: _t, FOREST_MAX_FEATURES: _f, FOREST_MAX_DEPTH: _d, ...rest } = env;
      return { ...rest, MODEL_NAME: 'account-code', PIPELINE_DEFINITION: JSON.stringify(small) };
    };

    it('trains with the declared label and features, stores a declared artifact once, and refuses a reused id', async () => {
      const { deps, registry, env } = await world({ 'week-1.csv': week(0), 'week-2.csv': week(1) });
      const job = declaredEnv(env);
      const summary = await runTraining(job, deps);
      expect(summary).toMatchObject({
        outcome: 'trained',
        modelName: 'account-code',
        mode: 'full',
        dataWindow: ['week-1.csv', 'week-2.csv'],
        rejectedRows: 0,
      });
      expect(summary.rows.train + summary.rows.holdout).toBe(1200);
      const model = deserializeDeclaredModel(await registry.downloadArtifact('account-code', 'v1'));
      expect(model.encoder.declaration).toEqual({ label: 'accountCode', features: account.features });
      expect(model.metadata).toMatchObject({
        holdoutMetrics: summary.holdoutMetrics,
        hyperparameters: expect.objectContaining({ trees: 5, seed: 11, label: 'accountCode' }),
      });
      expect(summary.classes).toEqual(model.metadata.classes);

      expect(await runTraining(job, deps)).toMatchObject({ outcome: 'already-trained', rows: summary.rows });
      // The same id for the single model's job (another encoding) is not this job's result.
      const single = runTraining({ ...env, MODEL_NAME: 'account-code' }, deps);
      await expect(single).rejects.toMatchObject({ code: 'CONFLICT' });
      expect((await registry.listVersions('account-code')).map((v) => v.versionId)).toEqual(['v1']);
    });

    it('refuses a bad declaration with one error naming every problem (exit code for bad input)', () => {
      const base = { MODEL_NAME: 'account-code', VERSION_ID: 'v1', DATA_BLOBS: '["a.csv"]' };
      const attempt = (env: Record<string, string>): ConfigError => {
        try {
          parseTrainingJob({ ...base, ...env });
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          expect(exitCodeFor(error)).toBe(EXIT_BAD_INPUT);
          return error as ConfigError;
        }
        throw new Error('expected a ConfigError');
      };
      expect(attempt({ PIPELINE_DEFINITION: '{"name":' }).problems).toEqual([
        { key: 'PIPELINE_DEFINITION', reason: 'expected the pipeline declaration as JSON' },
      ]);
      const broken = attempt({
        PIPELINE_DEFINITION: JSON.stringify({
          ...small,
          features: [
            ...small.features,
            { column: 'colour', kind: 'categorical' },
            { column: 'accountCode', kind: 'categorical' },
          ],
        }),
      });
      expect(broken.problems).toEqual([
        {
          key: 'PIPELINE_DEFINITION',
          reason: expect.stringMatching(/^features\[8\]: unknown column "colour"/),
        },
        {
          key: 'PIPELINE_DEFINITION',
          reason: 'features[9]: "accountCode" is the label and cannot also be a feature',
        },
      ]);
      expect(broken.message).toMatch(/^Invalid training job \(2\): PIPELINE_DEFINITION: features\[8\]/);
      const { forest: _forest, ...withoutForest } = small;
      expect(
        attempt({ PIPELINE_DEFINITION: JSON.stringify({ ...withoutForest, forest: { trees: 5 } }) }).problems,
      ).toEqual([
        {
          key: 'PIPELINE_DEFINITION',
          reason: 'forest: maxFeatures, minSamplesLeaf, maxDepth required (the resolved hyperparameters)',
        },
      ]);
      const contradicting = attempt({
        MODEL_NAME: 'vat-rate',
        PIPELINE_DEFINITION: JSON.stringify(small),
        FOREST_TREES: '9',
        TRAINING_MODE: 'warm-start',
        WARM_START_FROM: 'v0',
      });
      expect(contradicting.problems).toEqual([
        { key: 'PIPELINE_DEFINITION', reason: 'declares "account-code", but MODEL_NAME is "vat-rate"' },
        { key: 'TRAINING_MODE', reason: 'a declared pipeline trains in full (no warm start)' },
        { key: 'FOREST_TREES', reason: 'set by PIPELINE_DEFINITION.forest; leave it unset' },
      ]);
      // A declaration that reads rows as the single model does belongs on the single-model path.
      const vat = trainingDeclaration(findPipeline(manifest, 'vat-rate'));
      expect(attempt({ MODEL_NAME: 'vat-rate', PIPELINE_DEFINITION: JSON.stringify(vat) }).problems).toEqual([
        { key: 'PIPELINE_DEFINITION', reason: expect.stringContaining('without PIPELINE_DEFINITION') },
      ]);
      expect(parseTrainingJob({ ...base, PIPELINE_DEFINITION: JSON.stringify(small) })).toMatchObject({
        encoding: { kind: 'declared', pipeline: small },
        forest: small.forest,
        mode: { kind: 'full' },
      });
    });
  });
});
