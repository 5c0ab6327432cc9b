import {
  batchColumnsOfReport,
  columnsRead,
  trainableBatches,
  type BatchColumns,
} from '../../../shared/pipelines/trainableBatches';

const pipeline = {
  label: 'accountCode' as const,
  features: [
    { column: 'supplierId' as const, kind: 'high-cardinality' as const },
    { column: 'amountNet' as const, kind: 'numeric' as const },
  ],
  training: { windowBatches: 2 },
};
const all: BatchColumns = { kind: 'all' };
const known = (...columns: string[]): BatchColumns => ({ kind: 'known', columns: new Set(columns) });

function reader(table: Record<string, BatchColumns>) {
  const read: string[] = [];
  return {
    read,
    columnsOf: (name: string) => {
      read.push(name);
      return Promise.resolve(table[name] ?? all);
    },
  };
}

it('reads the label and every feature column, once each', () => {
  expect(columnsRead({ ...pipeline, features: [...pipeline.features, pipeline.features[0]] })).toEqual([
    'accountCode',
    'supplierId',
    'amountNet',
  ]);
});

it('a report names the columns it carries; one without the field, or none, carries them all', () => {
  expect(batchColumnsOfReport({ columns: ['invoiceId', 'accountCode'] })).toEqual(
    known('invoiceId', 'accountCode'),
  );
  expect(batchColumnsOfReport({ batchName: 'old.csv' })).toEqual(all);
  expect(batchColumnsOfReport({ columns: 'accountCode' })).toEqual(all);
});

it('leaves out batches lacking a column the model reads and keeps the order', async () => {
  const r = reader({
    'b3.csv': known('invoiceId', 'supplierId', 'amountNet'),
    'b4.csv': known('invoiceId', 'supplierId', 'amountNet', 'accountCode'),
  });
  const batches = await trainableBatches({
    accepted: ['b1.csv', 'b2.csv', 'b3.csv', 'b4.csv'],
    pipeline,
    championWindow: null,
    columnsOf: r.columnsOf,
  });
  expect(batches).toEqual(['b1.csv', 'b2.csv', 'b4.csv']);
});

it('stops scanning once it holds a full window, unless it must still reach the champion', async () => {
  const accepted = Array.from({ length: 30 }, (_, i) => `b${String(i).padStart(2, '0')}.csv`);
  const full = reader({});
  expect(
    await trainableBatches({ accepted, pipeline, championWindow: null, columnsOf: full.columnsOf }),
  ).toEqual(accepted.slice(-8));
  expect(full.read).toHaveLength(8);

  const warm = reader({});
  const batches = await trainableBatches({
    accepted,
    pipeline,
    championWindow: ['b05.csv'],
    columnsOf: warm.columnsOf,
  });
  expect(batches[0]).toBe('b00.csv');
  expect(batches).toContain('b05.csv');
});
