import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../../../shared/errors';
import {
  type GeneratorOptions,
  ALL_SCENARIOS,
  SCENARIOS,
  accountChangeStartWeek,
  generateWeek,
  newMarketStartWeek,
  weekStartDate,
  writeBatches,
} from '../../../shared/invoices/generator';
import { INVOICE_ROW_SCHEMA, type InvoiceRow, vatClassOf } from '../../../shared/invoices/schema';

const base: GeneratorOptions = { scenario: 'stable', weeks: 12, rowsPerWeek: 4000, seed: 42 };
const rowsOf = (options: GeneratorOptions, week: number): InvoiceRow[] => [...generateWeek(options, week)];

describe('generateWeek', () => {
  it('is deterministic per (options, week) and independent of other weeks', () => {
    const first = rowsOf(base, 5);
    rowsOf(base, 3); // generating another week in between must not change week 5
    expect(rowsOf(base, 5)).toEqual(first);
    const iterable = generateWeek(base, 5);
    expect([...iterable]).toEqual([...iterable]); // re-iterable
    expect(rowsOf({ ...base, seed: 43 }, 5)).not.toEqual(first);
  });

  it('produces rows that pass the invoice schema, with unique ids, dated inside their week', () => {
    for (const scenario of ALL_SCENARIOS) {
      const options = { ...base, scenario, rowsPerWeek: 1500 };
      for (const week of [0, 11]) {
        const rows = rowsOf(options, week);
        expect(rows).toHaveLength(1500);
        const start = weekStartDate(options, week);
        const end = weekStartDate(options, week + 1 > 11 ? 11 : week + 1);
        for (const row of rows) {
          expect(INVOICE_ROW_SCHEMA.parse(row)).toEqual(row);
          expect(row.issuedAt >= start).toBe(true);
          if (week < 11) expect(row.issuedAt < end).toBe(true);
        }
        expect(new Set(rows.map((r) => r.invoiceId)).size).toBe(rows.length);
      }
    }
  });

  it('rejects invalid options with a ValidationError naming the field', () => {
    expect(() => generateWeek({ ...base, weeks: 0 }, 0)).toThrow(ValidationError);
    expect(() => generateWeek({ ...base, startDate: '2024-07-02' }, 0)).toThrow(
      /startDate: must be a Monday/,
    );
    expect(() => generateWeek(base, 12)).toThrow(/week index/);
    expect(() => generateWeek({ ...base, scenario: 'nope' as never }, 0)).toThrow(/scenario/);
  });

  it('defaults week 0 to Monday 2024-07-01 so the reform falls mid-run', () => {
    expect(weekStartDate(base, 0)).toBe('2024-07-01');
    expect(weekStartDate(base, 9)).toBe('2024-09-02');
  });
});

describe('label realism', () => {
  it('has a learnable signal: per-supplier majority labels from weeks 0-3 score > 80 % on week 6', () => {
    const votes = new Map<string, Map<string, number>>();
    for (let week = 0; week < 4; week++) {
      for (const row of generateWeek(base, week)) {
        const key = `${row.supplierId}|${row.accountCode}`;
        const counts = votes.get(key) ?? new Map<string, number>();
        counts.set(vatClassOf(row), (counts.get(vatClassOf(row)) ?? 0) + 1);
        votes.set(key, counts);
      }
    }
    const majority = (key: string): string | undefined => {
      const counts = votes.get(key);
      if (!counts) return undefined;
      return [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
    };
    let correct = 0;
    let total = 0;
    for (const row of generateWeek(base, 6)) {
      total++;
      if (majority(`${row.supplierId}|${row.accountCode}`) === vatClassOf(row)) correct++;
    }
    const accuracy = correct / total;
    expect(accuracy).toBeGreaterThan(0.8);
    expect(accuracy).toBeLessThan(0.99); // label noise keeps it from being trivial
  });

  it('labels follow the booking rules: domestic rates, reverse charge abroad', () => {
    const rows = rowsOf({ ...base, rowsPerWeek: 20000 }, 2);
    const classes = new Set(rows.map(vatClassOf));
    for (const rate of ['24', '14', '10', '0']) expect(classes.has(rate)).toBe(true);
    const reverse = rows.filter((r) => r.reverseCharge);
    const reverseAtZero = reverse.filter((r) => r.vatRatePercent === 0).length / reverse.length;
    expect(reverseAtZero).toBeGreaterThan(0.9);
    const foreign = rows.filter((r) => r.supplierCountry !== 'FI');
    expect(foreign.length / rows.length).toBeGreaterThan(0.05);
    expect(foreign.filter((r) => r.vatRatePercent === 0).length / foreign.length).toBeGreaterThan(0.75);
  });
});

describe('scenarios', () => {
  it('vat-reform: no 25.5 before 2024-09-01 and no 24 % Finnish rows on or after it', () => {
    const options: GeneratorOptions = { ...base, scenario: 'vat-reform' };
    let before = 0;
    let after = 0;
    for (let week = 6; week < 11; week++) {
      for (const row of generateWeek(options, week)) {
        if (row.issuedAt < '2024-09-01') {
          before++;
          expect(row.vatRatePercent).not.toBe(25.5);
        } else {
          after++;
          if (row.supplierCountry === 'FI') expect(row.vatRatePercent).not.toBe(24);
        }
      }
    }
    expect(before).toBeGreaterThan(1000);
    expect(after).toBeGreaterThan(1000);
    const lateRows = rowsOf(options, 11).filter((r) => r.supplierCountry === 'FI');
    expect(lateRows.filter((r) => r.vatRatePercent === 25.5).length / lateRows.length).toBeGreaterThan(0.3);
    // the stable world keeps 24 % all along
    expect(rowsOf(base, 11).some((r) => r.vatRatePercent === 25.5)).toBe(false);
  });

  it('new-market: Swedish suppliers appear only from the start week, at Swedish rates', () => {
    const options: GeneratorOptions = { ...base, scenario: 'new-market' };
    const start = newMarketStartWeek(options);
    expect(start).toBe(6);
    for (let week = 0; week < start; week++) {
      expect(rowsOf(options, week).some((r) => r.supplierCountry === 'SE')).toBe(false);
    }
    const swedish = rowsOf(options, start + 2).filter((r) => r.supplierCountry === 'SE');
    expect(swedish.length).toBeGreaterThan(400);
    const rates = new Set(swedish.map((r) => r.vatRatePercent));
    for (const rate of [25, 12, 6]) expect(rates.has(rate)).toBe(true);
    expect(swedish.filter((r) => r.currency === 'SEK').length / swedish.length).toBeGreaterThan(0.9);
  });

  it('supplier-churn: the supplier mix of week 11 differs substantially from week 0', () => {
    const options: GeneratorOptions = { ...base, scenario: 'supplier-churn' };
    const week0 = new Set(rowsOf(options, 0).map((r) => r.supplierId));
    const late = rowsOf(options, 11);
    const fromOldSuppliers = late.filter((r) => week0.has(r.supplierId)).length / late.length;
    expect(fromOldSuppliers).toBeLessThan(0.6);
    // drift is gradual: week 1 still looks like week 0
    const week1 = rowsOf(options, 1);
    expect(week1.filter((r) => week0.has(r.supplierId)).length / week1.length).toBeGreaterThan(0.85);
    // and the stable scenario keeps its suppliers
    const stableWeek0 = new Set(rowsOf(base, 0).map((r) => r.supplierId));
    const stableLate = rowsOf(base, 11);
    expect(
      stableLate.filter((r) => stableWeek0.has(r.supplierId)).length / stableLate.length,
    ).toBeGreaterThan(0.9);
  });
});

describe('chart-of-accounts', () => {
  const options: GeneratorOptions = { ...base, scenario: 'chart-of-accounts', rowsPerWeek: 3000 };
  const withoutAccount = ({ accountCode: _account, ...rest }: InvoiceRow) => rest;

  it('moves only the bookings, from the middle of the run: VAT labels and every other column stay those of stable', () => {
    const start = accountChangeStartWeek(options);
    expect(start).toBe(6);
    expect(SCENARIOS).not.toContain('chart-of-accounts');
    for (const week of [0, start - 1, start, 11]) {
      const changed = rowsOf(options, week);
      const stable = rowsOf({ ...options, scenario: 'stable' }, week);
      expect(changed.map(withoutAccount)).toEqual(stable.map(withoutAccount));
      const moved = changed.filter((row, i) => row.accountCode !== stable[i].accountCode).length;
      if (week < start) expect(moved).toBe(0);
      // Every sector with an alternative account swaps: a large share of the bookings move.
      else expect(moved / changed.length).toBeGreaterThan(0.3);
    }
  });

  it('books on the same accounts as before (a new mapping, not new codes)', () => {
    const before = new Set(rowsOf(options, 0).map((r) => r.accountCode));
    const after = new Set(rowsOf(options, 11).map((r) => r.accountCode));
    expect([...after].filter((code) => !before.has(code)).length).toBeLessThanOrEqual(1);
    expect(after.size).toBeGreaterThan(10);
  });
});

describe('writeBatches', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'invoices-gen-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes one file per week named by its Monday and reports each week and all rows', async () => {
    const weeks: number[] = [];
    let rows = 0;
    const files = await writeBatches({
      ...base,
      weeks: 3,
      rowsPerWeek: 700,
      outDir: join(dir, 'out'),
      format: 'jsonl.gz',
      onWeek: (week) => weeks.push(week),
      onRows: (n) => (rows += n),
    });
    expect(files.map((f) => f.slice(dir.length + 5))).toEqual([
      'invoices-2024-07-01.jsonl.gz',
      'invoices-2024-07-08.jsonl.gz',
      'invoices-2024-07-15.jsonl.gz',
    ]);
    expect(weeks).toEqual([0, 1, 2]);
    expect(rows).toBe(2100);
    expect((await readdir(join(dir, 'out'))).sort()).toEqual(files.map((f) => f.slice(dir.length + 5)));
  });
});
