import { Readable } from 'node:stream';
import { ValidationError } from '../../../shared/errors';
import { evaluateOnBatch, evaluateRows } from '../../../shared/model/evaluation';
import {
  isHoldoutRow,
  trainFromBatches,
  trainFromRows,
  type TrainingOptions,
} from '../../../shared/model/training';
import { syntheticRows, toCsv } from './syntheticInvoices';

const options: TrainingOptions = {
  trees: 10,
  maxFeatures: 'sqrt',
  minSamplesLeaf: 1,
  maxDepth: 32,
  seed: 5,
  modelName: 'vat',
  threads: 1,
};

describe('holdout', () => {
  it('is chosen by invoice id, stably, at about the requested share', () => {
    const ids = Array.from({ length: 20000 }, (_, i) => `INV-${i}`);
    const held = ids.filter((id) => isHoldoutRow(id, 0.2));
    expect(held.length / ids.length).toBeGreaterThan(0.19);
    expect(held.length / ids.length).toBeLessThan(0.21);
    expect(ids.filter((id) => isHoldoutRow(id, 0.2))).toEqual(held);
    expect(ids.filter((id) => isHoldoutRow(id, 0))).toEqual([]);
  });

  it('never trains on held-out rows', async () => {
    const rows = syntheticRows({ rows: 2000, seed: 1 });
    // Give every held-out row a class and a supplier of its own: had any been trained on, the
    // model would know the class and the supplier.
    const marked = rows.map((row) =>
      isHoldoutRow(row.invoiceId, 0.2) ? { ...row, vatRatePercent: 99, supplierId: 'HOLDOUT-ONLY' } : row,
    );
    const result = await trainFromRows(marked, options);
    const heldOut = marked.filter((r) => r.vatRatePercent === 99).length;
    expect(heldOut).toBeGreaterThan(300);
    expect(result.metadata.rows).toEqual({ train: 2000 - heldOut, holdout: heldOut });
    expect(result.model.forest.classes).not.toContain('99');
    expect(result.model.encoder.toJSON().target.fields.supplierId.values).not.toContain('HOLDOUT-ONLY');
    expect(result.holdout.perClass['99'].support).toBe(heldOut);
    expect(result.holdout.featureMix.unseenShare.supplierId).toBe(1);
    expect(result.metadata.holdoutMetrics.accuracy).toBe(0);
  });
});

describe('warm start', () => {
  it('keeps the tree count, records its parent and learns new suppliers', async () => {
    const old = await trainFromRows(syntheticRows({ rows: 2500, seed: 2, suppliers: 40 }), {
      ...options,
      versionId: 'old',
      dataWindow: ['week-1.csv'],
    });
    // New distribution: suppliers the old model never saw, with their own rates (one a new class).
    const rateOfNew = (s: number): number => [25.5, 0, 14][s % 3];
    const fresh = (seed: number, n: number): ReturnType<typeof syntheticRows> =>
      syntheticRows({
        rows: n,
        seed,
        suppliers: 30,
        supplierPrefix: 'NEW',
        rateOfSupplier: rateOfNew,
        invoicePrefix: `W${seed}`,
      });
    const newTest = fresh(4, 1000);
    const before = evaluateRows(old.model, newTest);

    const warm = await trainFromRows(fresh(3, 2500), {
      ...options,
      versionId: 'warm',
      warmStartFrom: old.model,
      dataWindow: ['week-2.csv'],
    });
    const after = evaluateRows(warm.model, newTest);
    expect(warm.model.forest.trees).toHaveLength(10);
    expect(warm.metadata.warmStartedFrom).toBe('old');
    expect(warm.metadata.dataWindow).toEqual(['week-1.csv', 'week-2.csv']);
    expect(warm.metadata.classes).toEqual(['0', '5.5', '9', '14', '24', '25.5']);
    // 6 new trees (60 %) after the 4 newest trees of the old model (leaves over 6 classes now).
    const structure = (t: { feature: Uint8Array; threshold: Uint16Array; child: Uint32Array }): unknown[] => [
      t.feature,
      t.threshold,
      t.child,
    ];
    expect(warm.model.forest.trees.slice(0, 4).map(structure)).toEqual(
      old.model.forest.trees.slice(6).map(structure),
    );
    expect(before.accuracy).toBeLessThan(0.5);
    expect(after.accuracy).toBeGreaterThan(0.9);
    // Old suppliers are still known to the extended encoder: where their rates also occur in the
    // new batches (0 and 14), the new trees read them through the updated target statistics.
    const oldShared = syntheticRows({ rows: 800, seed: 9, suppliers: 40 }).filter((r) =>
      [0, 14].includes(r.vatRatePercent),
    );
    expect(evaluateRows(warm.model, oldShared).accuracy).toBeGreaterThan(0.9);
  });
});

describe('batches', () => {
  const rows = syntheticRows({ rows: 3000, seed: 6 });
  const csv = toCsv(rows);
  const broken = csv.replace(/\n(INV-6-7,[^\n]*)/, '\nINV-6-7,not-a-date,S1,FI,R1,4000,EUR,1,1,false,24');

  it('trains from streamed batches, counting rejected rows', async () => {
    const result = await trainFromBatches(
      [
        { name: 'week-1.csv', open: () => Readable.from([Buffer.from(broken)]) },
        {
          name: 'week-2.csv',
          open: async () => Readable.from([Buffer.from(toCsv(syntheticRows({ rows: 500, seed: 7 })))]),
        },
      ],
      { ...options, versionId: 'batches' },
    );
    expect(result.rejectedRows).toBe(1);
    expect(result.metadata.rows.train + result.metadata.rows.holdout).toBe(3499);
    expect(result.metadata.dataWindow).toEqual(['week-1.csv', 'week-2.csv']);
    expect(result.metadata.trainingCpuSeconds).toBeGreaterThan(0);
    expect(result.metadata.holdoutMetrics.accuracy).toBeGreaterThan(0.95);
  });

  it('builds byte-identical artifacts from the same rows, seed and trainedAt; the measured CPU stays beside them', async () => {
    const again = { ...options, versionId: 'same', trainedAt: '2024-09-02T06:00:00.000Z' };
    const first = await trainFromRows(rows.slice(0, 1500), again);
    const second = await trainFromRows(rows.slice(0, 1500), again);
    expect(second.artifact).toBe(first.artifact);
    expect(first.model.metadata.trainedAt).toBe('2024-09-02T06:00:00.000Z');
    expect(first.model.metadata.trainingCpuSeconds).toBeNull();
    expect(first.metadata.trainingCpuSeconds).toBeGreaterThan(0);
    const otherSeed = await trainFromRows(rows.slice(0, 1500), { ...again, seed: 6 });
    expect(otherSeed.artifact).not.toBe(first.artifact);
  });

  it('evaluates a stream exactly as the same rows in memory, in any chunk size', async () => {
    const model = (await trainFromRows(rows.slice(0, 1500), options)).model;
    const test = rows.slice(1500);
    const inMemory = evaluateRows(model, test);
    const streamed = await evaluateOnBatch(
      model,
      Readable.from([Buffer.from(toCsv(test))]),
      { fileName: 'w.csv' },
      { chunkRows: 97 },
    );
    expect(streamed).toEqual(inMemory);
    expect(streamed.rowsAccepted).toBe(1500);

    const withBadRow = await evaluateOnBatch(model, Readable.from([Buffer.from(broken)]), {
      fileName: 'w.csv',
    });
    expect(withBadRow.rowsRejected).toBe(1);
    expect(withBadRow.rowsRead).toBe(3000);
    expect(withBadRow.rowsAccepted).toBe(2999);
  });

  it('refuses to train on nothing and on bad options', async () => {
    await expect(trainFromRows([], options)).rejects.toThrow(ValidationError);
    await expect(trainFromRows(rows, { ...options, trees: 0 })).rejects.toThrow(
      /trees: must be a positive integer/,
    );
    await expect(trainFromRows(rows, { ...options, holdoutFraction: 1 })).rejects.toThrow(/holdoutFraction/);
  });
});
