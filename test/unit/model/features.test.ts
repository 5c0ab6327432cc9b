import { calendarOf, InvoiceColumns } from '../../../shared/model/columns';
import { encodeRows, FeatureEncoder, UNSEEN_CODE } from '../../../shared/model/features';
import { syntheticRows } from './syntheticInvoices';

function columnsOf(rows: ReturnType<typeof syntheticRows>): InvoiceColumns {
  const columns = new InvoiceColumns();
  for (const row of rows) columns.pushLabelled(row);
  return columns;
}

const rows = syntheticRows({ rows: 2000, seed: 3, suppliers: 30 });
const { encoder, matrix } = FeatureEncoder.fit(columnsOf(rows));
const feature = (name: string): number => encoder.featureNames.indexOf(name);

describe('FeatureEncoder', () => {
  it('encodes every feature into its declared bin range', () => {
    expect(matrix.rows).toBe(2000);
    expect(matrix.features).toBe(encoder.featureCount);
    // 5 categorical + 2 numeric + 3 calendar/flag + 2 target fields × 5 classes.
    expect(encoder.featureCount).toBe(20);
    const outOfRange: string[] = [];
    for (let r = 0; r < matrix.rows; r++) {
      for (let f = 0; f < matrix.features; f++) {
        const bin = matrix.bins[r * matrix.features + f];
        if (bin >= encoder.binCounts[f]) outOfRange.push(`row ${r} ${encoder.featureNames[f]}=${bin}`);
      }
    }
    expect(outOfRange).toEqual([]);
  });

  it('maps categories never seen in training to the unseen code without failing', () => {
    const [known] = rows;
    const stranger = {
      ...known,
      supplierId: 'NEVER-SEEN',
      supplierCountry: 'JP',
      currency: 'JPY',
      accountCode: '999999',
    };
    const encoded = encodeRows(encoder, [known, stranger]);
    const F = encoded.features;
    expect(encoded.bins[F + feature('supplierId')]).toBe(UNSEEN_CODE);
    expect(encoded.bins[F + feature('supplierCountry')]).toBe(UNSEEN_CODE);
    expect(encoded.bins[F + feature('currency')]).toBe(UNSEEN_CODE);
    expect(encoded.bins[feature('supplierId')]).not.toBe(UNSEEN_CODE);
    expect(encoded.unseenRows).toEqual({
      supplierId: 1,
      supplierCountry: 1,
      receiverId: 0,
      accountCode: 1,
      currency: 1,
    });
  });

  it('gives rare categories the unseen code so the trees learn what to do with it', () => {
    const rare = [...rows, { ...rows[0], invoiceId: 'X1', supplierId: 'ONCE' }];
    const fitted = FeatureEncoder.fit(columnsOf(rare));
    const last = (rare.length - 1) * fitted.matrix.features;
    expect(fitted.matrix.bins[last + feature('supplierId')]).toBe(UNSEEN_CODE);
    // Out-of-fold target statistics: a supplier seen once has only its own row, which its own
    // fold leaves out, so it reads exactly like an unseen supplier (the prior), never its label.
    const unseen = encodeRows(fitted.encoder, [{ ...rows[0], supplierId: 'NEVER' }]);
    for (let k = 0; k < 5; k++) {
      const f = feature('supplierId:p(0)') + k;
      expect(fitted.matrix.bins[last + f]).toBe(unseen.bins[f]);
    }
  });

  it('puts suppliers that share a VAT rate next to each other in code order', () => {
    const encoded = encodeRows(encoder, rows);
    const byCode = new Map<number, number>();
    rows.forEach((row, r) => byCode.set(encoded.bins[r * encoded.features], row.vatRatePercent));
    const ratesInCodeOrder = [...byCode.entries()].sort((a, b) => a[0] - b[0]).map(([, rate]) => rate);
    const changes = ratesInCodeOrder.filter((rate, i) => i > 0 && rate !== ratesInCodeOrder[i - 1]).length;
    expect(changes).toBe(4);
  });

  it('extends for warm start without changing how old rows are read', () => {
    const newRows = syntheticRows({ rows: 600, seed: 4, suppliers: 20, supplierPrefix: 'NEW' });
    const extended = encoder.extend(columnsOf(newRows)).encoder;
    expect(extended.featureNames).toEqual(encoder.featureNames);
    const before = encodeRows(encoder, rows.slice(0, 200));
    const after = encodeRows(extended, rows.slice(0, 200));
    const F = before.features;
    const stable = encoder.featureNames.filter((n) => !n.includes(':p('));
    for (let r = 0; r < 200; r++) {
      for (const name of stable) {
        expect(after.bins[r * F + feature(name)]).toBe(before.bins[r * F + feature(name)]);
      }
    }
    const fresh = encodeRows(extended, newRows.slice(0, 50));
    expect(fresh.unseenRows.supplierId).toBe(0);
    for (let r = 0; r < 50; r++) {
      expect(fresh.bins[r * F + feature('supplierId')]).toBeGreaterThan(
        encoder.binCounts[feature('supplierId')] - 1,
      );
    }
  });

  it('round-trips through JSON', () => {
    const copy = FeatureEncoder.fromJSON(JSON.parse(JSON.stringify(encoder.toJSON())));
    expect(Array.from(encodeRows(copy, rows).bins)).toEqual(Array.from(encodeRows(encoder, rows).bins));
  });
});

describe('calendarOf', () => {
  it('gives month and day of week', () => {
    expect(calendarOf('2024-01-01')).toEqual({ month: 0, dayOfWeek: 1 });
    expect(calendarOf('2024-02-29')).toEqual({ month: 1, dayOfWeek: 4 });
    expect(calendarOf('1969-12-31')).toEqual({ month: 11, dayOfWeek: 3 });
  });
});
