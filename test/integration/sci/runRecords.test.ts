import { loadSettings } from '../../../shared/config';
import { ValidationError } from '../../../shared/errors';
import { RunRecordStore, utcDayOf, type RunRecord } from '../../../shared/sci/runRecords';
import { aggregateRun, coefficientsFromSettings, footprintOfStage } from '../../../shared/sci/sci';
import { testStorage, uniqueName } from '../../support/storage';

const coefficients = coefficientsFromSettings(loadSettings({ DataStorage: 'UseDevelopmentStorage=true' }));

function stage(name: string, startedAt: string, minutes: number) {
  return footprintOfStage(
    {
      stage: name,
      region: 'swedencentral',
      startedAt,
      endedAt: new Date(Date.parse(startedAt) + minutes * 60_000).toISOString(),
      cpuCores: 2,
      memoryGb: 4,
      cpuSeconds: minutes * 60,
      resourceSource: 'local-process',
      functionalUnit: { kind: 'retrain', count: 1 },
      intensity: { gramsPerKwh: 20, provider: 'trace:em_SE-SE3_2022', source: 'trace', signal: 'average' },
    },
    coefficients,
  );
}

function runRecord(modelName: string, runId: string, startedAt: string, stageCount = 2): RunRecord {
  const stages = Array.from({ length: stageCount }, (_, i) =>
    stage(i === 0 ? 'train' : `compare-${i}`, new Date(Date.parse(startedAt) + i * 60_000).toISOString(), 1),
  );
  return {
    modelName,
    runId,
    decision: {
      kind: 'retrainWhenGreen',
      reason: 'accuracy dropped 3.1 % (small drop)',
      requestedAt: startedAt,
      deadline: new Date(Date.parse(startedAt) + 24 * 3600_000).toISOString(),
      triggeringBatch: 'batches/2025-03-01/b1.csv',
      relativeDrop: 0.031,
    },
    plan: {
      kind: 'window',
      region: 'swedencentral',
      startAt: startedAt,
      expectedGramsPerKwh: 21,
      baselineGramsPerKwh: 280,
      reason: 'greenest allowed window before the deadline',
    },
    region: 'swedencentral',
    startedAt,
    endedAt: new Date(Date.parse(startedAt) + stageCount * 60_000).toISOString(),
    outcome: 'promoted',
    detail: 'challenger 0.94 beat champion 0.91',
    championVersionId: 'v1',
    challengerVersionId: 'v2',
    championAccuracy: 0.91,
    challengerAccuracy: 0.94,
    stages,
    totals: aggregateRun(stages, { kind: 'retrain', count: 1 }),
  };
}

describe('RunRecordStore on Azurite', () => {
  let store: RunRecordStore;
  const storage = testStorage();
  const tables = { runs: uniqueName('runs'), daily: uniqueName('daily') };
  let conflicts = 0;

  beforeAll(async () => {
    store = RunRecordStore.fromStorage(storage, tables, {
      // Count lost races; yield so the other writers get a turn (no sleeps, nothing timed).
      backoff: async () => {
        conflicts += 1;
        await new Promise((resolve) => setImmediate(resolve));
      },
    });
    await store.ensureTables();
    await store.ensureTables(); // idempotent
  });

  test('a run round-trips with its stages, decision, accuracies and totals', async () => {
    const record = runRecord('vat-rate', 'run-1', '2025-03-01T10:00:00.000Z');
    await store.saveRun(record);
    expect(await store.getRun('vat-rate', 'run-1')).toEqual(record);
    expect(await store.getRun('vat-rate', 'no-such-run')).toBeNull();
  });

  test('stage lists beyond one 64 KiB property are split and reassembled; a re-save replaces every part', async () => {
    const big = runRecord('vat-rate', 'run-big', '2025-03-02T10:00:00.000Z', 120);
    expect(JSON.stringify(big.stages).length).toBeGreaterThan(64 * 1024);
    await store.saveRun(big);
    expect(await store.getRun('vat-rate', 'run-big')).toEqual(big);
    const bigEntity = await storage
      .table(tables.runs)
      .getEntity<{ stagesParts: number }>('vat-rate', 'run-big');
    expect(bigEntity.stagesParts).toBeGreaterThan(1);

    const small = runRecord('vat-rate', 'run-big', '2025-03-02T10:00:00.000Z', 1);
    await store.saveRun(small);
    expect(await store.getRun('vat-rate', 'run-big')).toEqual(small);
    const entity = await storage.table(tables.runs).getEntity<Record<string, unknown>>('vat-rate', 'run-big');
    expect(Object.keys(entity).filter((k) => /^stages\d+$/.test(k))).toEqual(['stages0']);
  });

  test('listRuns: oldest first, since and limit (limit keeps the most recent)', async () => {
    const model = uniqueName('model-');
    for (const [id, at] of [
      ['c', '2025-04-03T00:00:00.000Z'],
      ['a', '2025-04-01T00:00:00.000Z'],
      ['b', '2025-04-02T00:00:00.000Z'],
    ] as const) {
      await store.saveRun(runRecord(model, id, at, 1));
    }
    expect((await store.listRuns(model)).map((r) => r.runId)).toEqual(['a', 'b', 'c']);
    expect((await store.listRuns(model, { sinceIso: '2025-04-02T00:00:00Z' })).map((r) => r.runId)).toEqual([
      'b',
      'c',
    ]);
    expect((await store.listRuns(model, { limit: 2 })).map((r) => r.runId)).toEqual(['b', 'c']);
    expect(await store.listRuns(uniqueName('nobody-'))).toEqual([]);
  });

  test('invalid records and keys are ValidationErrors before any write', async () => {
    const record = runRecord('vat-rate', 'bad/id', '2025-03-01T10:00:00.000Z');
    await expect(store.saveRun(record)).rejects.toThrow(/runId: no \/ \\ # \?/);
    await expect(
      store.saveRun(runRecord('vat-rate', 'tab\tid', '2025-03-01T10:00:00.000Z')),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(store.getRun('vat-rate', 'what?')).rejects.toBeInstanceOf(ValidationError);
    await expect(
      store.saveRun({ ...runRecord('vat-rate', 'r', '2025-03-01T10:00:00.000Z'), challengerAccuracy: 1.4 }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(store.addToDailyAggregate('vat-rate', '2025-13-01', { retrains: 1 })).rejects.toThrow(/day/);
    await expect(store.addToDailyAggregate('vat-rate', '2025-03-01', { energyKwh: -1 })).rejects.toThrow(
      /energyKwh/,
    );
  });

  test('20 concurrent increments of one day are all counted (ETag compare-and-swap)', async () => {
    const model = uniqueName('model-');
    conflicts = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.addToDailyAggregate(model, '2025-03-01', {
          energyKwh: 0.001,
          operationalGrams: 0.5,
          embodiedGrams: 0.25,
          retrains: i % 2,
          evaluations: 1,
        }),
      ),
    );
    expect(results.every((r) => r.applied)).toBe(true);
    // The writers really raced (lost compare-and-swaps were retried), and none of them was lost.
    expect(conflicts).toBeGreaterThan(0);
    const [day] = await store.listDailyAggregates(model, '2025-03-01', '2025-03-01');
    expect(day).toEqual({
      modelName: model,
      day: '2025-03-01',
      energyKwh: expect.closeTo(0.02, 12),
      operationalGrams: expect.closeTo(10, 9),
      embodiedGrams: expect.closeTo(5, 9),
      totalGrams: expect.closeTo(15, 9),
      retrains: 10,
      evaluations: 20,
    });
  });

  test('an increment retried with the same operation id is applied once', async () => {
    const model = uniqueName('model-');
    const first = await store.addToDailyAggregate(
      model,
      '2025-03-02',
      { retrains: 1, operationalGrams: 3 },
      { operationId: 'run-7' },
    );
    const again = await store.addToDailyAggregate(
      model,
      '2025-03-02',
      { retrains: 1, operationalGrams: 3 },
      { operationId: 'run-7' },
    );
    const other = await store.addToDailyAggregate(
      model,
      '2025-03-02',
      { evaluations: 1 },
      { operationId: 'eval-1' },
    );
    expect([first.applied, again.applied, other.applied]).toEqual([true, false, true]);
    expect(other.aggregate).toMatchObject({ retrains: 1, operationalGrams: 3, evaluations: 1 });
  });

  test('listDailyAggregates returns the inclusive range, oldest first', async () => {
    const model = uniqueName('model-');
    for (const day of ['2025-03-05', '2025-03-03', '2025-03-04', '2025-03-09']) {
      await store.addToDailyAggregate(model, day, { evaluations: 1 });
    }
    expect((await store.listDailyAggregates(model, '2025-03-03', '2025-03-05')).map((d) => d.day)).toEqual([
      '2025-03-03',
      '2025-03-04',
      '2025-03-05',
    ]);
    expect(utcDayOf('2025-03-05T23:30:00-02:00')).toBe('2025-03-06');
  });
});
