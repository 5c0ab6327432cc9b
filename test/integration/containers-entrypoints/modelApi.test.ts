import { parseApiSettings } from '../../../containers/model-api/apiSettings';
import { loadServingModel } from '../../../containers/model-api/loadModel';
import { MAX_BATCH_ROWS } from '../../../containers/model-api/predictRequest';
import type { Prediction } from '../../../containers/model-api/predictor';
import type { ServingModel } from '../../../containers/model-api/server';
import { ModelRegistry } from '../../../shared/registry';
import { testStorage, uniqueName } from '../../support/storage';
import { invoiceRows, smallServingModel } from './invoiceFixtures';
import { serve, type Answer } from './modelApiClient';

/** Rows as a caller sends them: without the label. */
function unlabelled(count: number, seed: number): Record<string, unknown>[] {
  return invoiceRows(count, seed).map(({ vatRatePercent: _label, ...features }) => features);
}

function predictionsOf(answer: Answer): Prediction[] {
  return answer.body.predictions as Prediction[];
}

function issuePaths(answer: Answer): string[] {
  const error = answer.body.error as { code: string; issues: { path: string }[] };
  expect(error.code).toBe('VALIDATION_FAILED');
  return error.issues.map((i) => i.path);
}

let serving: ServingModel;
beforeAll(async () => {
  serving = await smallServingModel('api-v1');
});

describe('model API server', () => {
  it('answers 503 while the model loads and 200 once it is in', async () => {
    let resolve!: (value: ServingModel) => void;
    const api = await serve(new Promise<ServingModel>((r) => (resolve = r)));
    try {
      expect(await api.call('GET', '/health')).toMatchObject({ status: 503, body: { status: 'loading' } });
      expect((await api.call('POST', '/predict', { body: unlabelled(1, 1)[0] })).status).toBe(503);
      expect((await api.call('GET', '/model')).status).toBe(503);

      resolve(serving);
      await new Promise((r) => setImmediate(r));
      expect(await api.call('GET', '/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
    } finally {
      await api.close();
    }
  });

  it('stays 503 with the reason when the load fails', async () => {
    const api = await serve(Promise.reject(new Error('artifact truncated')));
    try {
      await new Promise((r) => setImmediate(r));
      // The reason is in the container's log, not in an anonymous answer.
      expect(await api.call('GET', '/health')).toMatchObject({ status: 503, body: { status: 'failed' } });
      expect((await api.call('POST', '/predict', { body: unlabelled(1, 1)[0] })).status).toBe(503);
    } finally {
      await api.close();
    }
  });

  it('predicts one invoice and a batch, learning the rule, and counts predictions in /model', async () => {
    const api = await serve(serving);
    try {
      const labelled = invoiceRows(200, 99);
      const single = await api.call('POST', '/predict', { body: unlabelled(1, 99)[0] });
      expect(single.status).toBe(200);
      expect(single.body.modelVersion).toBe('api-v1');
      expect(predictionsOf(single)).toEqual([
        { vatRatePercent: labelled[0].vatRatePercent, probability: expect.any(Number) },
      ]);

      // Rows straight from a labelled batch are accepted too (the label is not used).
      const batch = await api.call('POST', '/predict', { body: { invoices: labelled } });
      expect(batch.status).toBe(200);
      const predictions = predictionsOf(batch);
      expect(predictions).toHaveLength(200);
      for (const p of predictions) {
        expect([0, 14, 24]).toContain(p.vatRatePercent);
        expect(p.probability).toBeGreaterThan(0.3);
        expect(p.probability).toBeLessThanOrEqual(1);
      }
      const correct = predictions.filter((p, i) => p.vatRatePercent === labelled[i].vatRatePercent).length;
      expect(correct / predictions.length).toBeGreaterThan(0.95);

      const info = await api.call('GET', '/model');
      expect(info.status).toBe(200);
      expect(info.body).toMatchObject({
        modelName: 'vat-rate',
        versionId: 'api-v1',
        classes: ['0', '14', '24'],
        holdoutMetrics: serving.metadata.holdoutMetrics,
        predictionsServed: 201,
        requestsServed: 2,
      });
      // Nothing about the training data: no batch names or paths.
      expect(info.body).not.toHaveProperty('dataWindow');
      expect(JSON.stringify(info.body)).not.toContain('week-1.csv');
    } finally {
      await api.close();
    }
  });

  it('rejects bad bodies with 400 and path-qualified issues, and does not count them', async () => {
    const api = await serve(serving);
    try {
      const [row] = unlabelled(1, 5);
      const { currency: _dropped, ...withoutCurrency } = row;
      const cases: { payload: unknown; path: string }[] = [
        { payload: { ...row, amountNet: 'lots' }, path: 'amountNet' },
        { payload: { ...row, supplierCountry: 'XX' }, path: 'supplierCountry' },
        { payload: withoutCurrency, path: 'currency' },
        { payload: { ...row, colour: 'blue' }, path: '(root)' },
        { payload: { invoices: [row, { ...row, lineCount: 0 }] }, path: 'invoices.1.lineCount' },
        { payload: { invoices: [] }, path: 'invoices' },
        { payload: { invoices: 'all of them' }, path: 'invoices' },
        { payload: [row], path: '(root)' },
      ];
      for (const { payload, path } of cases) {
        const answer = await api.call('POST', '/predict', { body: payload });
        expect({ payload, status: answer.status }).toEqual({ payload, status: 400 });
        expect(issuePaths(answer)).toContain(path);
      }

      const tooMany = { invoices: Array.from({ length: MAX_BATCH_ROWS + 1 }, () => row) };
      const oversized = await api.call('POST', '/predict', { body: tooMany });
      expect(oversized.status).toBe(400);
      expect((oversized.body.error as { issues: unknown }).issues).toEqual([
        {
          path: 'invoices',
          message: `at most ${MAX_BATCH_ROWS} invoices per request (got ${MAX_BATCH_ROWS + 1})`,
        },
      ]);
      // The largest allowed batch fits the body limit and is served.
      const largest = await api.call('POST', '/predict', { body: { invoices: tooMany.invoices.slice(1) } });
      expect(largest.status).toBe(200);
      expect(predictionsOf(largest)).toHaveLength(MAX_BATCH_ROWS);

      const notJson = await api.call('POST', '/predict', { body: '{"invoiceId": ' });
      expect(notJson.status).toBe(400);
      expect((notJson.body.error as { message: string }).message).toBe('Body is not valid JSON');

      expect((await api.call('GET', '/model')).body).toMatchObject({
        predictionsServed: MAX_BATCH_ROWS,
        requestsServed: 1,
      });
      expect((await api.call('GET', '/nope')).status).toBe(404);
    } finally {
      await api.close();
    }
  });
});

describe('model API loading and settings', () => {
  it('loads the pinned version or the champion from the registry, and refuses a missing one', async () => {
    const registry = new ModelRegistry(testStorage().blobs, { containerName: uniqueName('models') });
    await registry.ensureContainer();
    const v1 = await smallServingModel('load-v1');
    await registry.putVersion(v1.metadata, v1.artifact);

    await expect(loadServingModel(registry, 'vat-rate', { kind: 'champion' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    const pinned = await loadServingModel(registry, 'vat-rate', { kind: 'pinned', versionId: 'load-v1' });
    expect(pinned.metadata).toStrictEqual(v1.metadata);

    await registry.promote('vat-rate', 'load-v1', { reason: 'first', expectedChampion: null });
    const champion = await loadServingModel(registry, 'vat-rate', { kind: 'champion' });
    expect(champion.metadata.versionId).toBe('load-v1');
    const api = await serve(champion);
    try {
      const answer = await api.call('POST', '/predict', { body: { invoices: unlabelled(50, 3) } });
      expect(answer.body.modelVersion).toBe('load-v1');
      // The reloaded artifact predicts exactly what the in-memory model does.
      const direct = await serve(v1);
      try {
        const again = await direct.call('POST', '/predict', { body: { invoices: unlabelled(50, 3) } });
        expect(predictionsOf(again)).toEqual(predictionsOf(answer));
      } finally {
        await direct.close();
      }
    } finally {
      await api.close();
    }

    await expect(
      loadServingModel(registry, 'vat-rate', { kind: 'pinned', versionId: 'load-v9' }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses an artifact stored under another version id', async () => {
    const registry = new ModelRegistry(testStorage().blobs, { containerName: uniqueName('models') });
    await registry.ensureContainer();
    const v1 = await smallServingModel('real-v1');
    await registry.putVersion({ ...v1.metadata, versionId: 'copied-v2' }, v1.artifact);
    await expect(
      loadServingModel(registry, 'vat-rate', { kind: 'pinned', versionId: 'copied-v2' }),
    ).rejects.toMatchObject({ code: 'MODEL_INVALID' });
  });

  it('reads PORT, HOST and MODEL_VERSION, with defaults, and names bad values', () => {
    const key = { MODEL_API_AUTH_MODE: 'key', MODEL_API_KEY: 'x'.repeat(40) };
    expect(parseApiSettings(key)).toEqual({
      port: 8080,
      host: '0.0.0.0',
      choice: { kind: 'champion' },
      auth: { kind: 'key', key: 'x'.repeat(40) },
      transport: { kind: 'http' },
      serveTrees: null,
    });
    expect(
      parseApiSettings({
        ...key,
        PORT: '9001',
        HOST: '127.0.0.1',
        MODEL_VERSION: 'v7',
        MODEL_API_SERVE_TREES: '5',
      }),
    ).toMatchObject({
      port: 9001,
      host: '127.0.0.1',
      choice: { kind: 'pinned', versionId: 'v7' },
      serveTrees: 5,
    });
    expect(() => parseApiSettings({ ...key, PORT: '70000', MODEL_VERSION: '../x' })).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        problems: [
          expect.objectContaining({ key: 'PORT' }),
          expect.objectContaining({ key: 'MODEL_VERSION' }),
        ],
      }),
    );
  });
});
