import { Readable } from 'node:stream';
import { parseInvoiceBatch, type ParsedRecord } from '../../../shared/invoices/parser';
import { acceptedJsonRow, acceptedRow } from '../../../shared/invoices/rowFastPath';
import { INVOICE_COLUMNS, INVOICE_ROW_SCHEMA, type InvoiceRow } from '../../../shared/invoices/schema';
import { mulberry32 } from '../../../shared/model/random';

/**
 * The parser accepts rows through a direct call of the cell checks and only asks zod about rows
 * that fail. These tests hold that path equal to INVOICE_ROW_SCHEMA on a hostile corpus: for every
 * value, the fast path accepts exactly when zod does, with the same object (keys, order, values,
 * -0 included), and the parser's verdicts are zod's.
 */

const GOOD: Record<string, string> = {
  invoiceId: 'INV-1',
  issuedAt: '2024-07-01',
  supplierId: 'SUP-1',
  supplierCountry: 'FI',
  receiverId: 'RCV-1',
  accountCode: '7680',
  currency: 'EUR',
  amountNet: '10.5',
  lineCount: '1',
  reverseCharge: 'false',
  vatRatePercent: '24',
};

const HOSTILE_TEXT = [
  '',
  ' ',
  '\t',
  '  x  ',
  'a'.repeat(64),
  'a'.repeat(65),
  ` ${'a'.repeat(64)} `,
  '\u0000',
  '\uFEFF1',
  'é',
  '𝟙',
  '\uFFFD',
  '2024-02-29',
  '2023-02-29',
  '2024-13-01',
  '2024-00-10',
  '2024-04-31',
  '1969-12-31',
  '1970-01-01',
  '2100-12-31',
  '2101-01-01',
  '2024-1-01',
  ' 2024-01-01',
  '2024-01-01 ',
  '2024-01-01T00:00:00Z',
  '0000-01-01',
  '٢٠٢٤-٠١-٠١',
  'FI',
  'fi',
  'XX',
  'ZZ',
  'EU',
  'UK',
  'GB',
  ' FI',
  'EUR',
  'eur',
  'XXX',
  'XTS',
  'BTC',
  ' EUR',
  '4000',
  ' 4000 ',
  '12',
  '1234567',
  '0012',
  '12.50',
  ' -12.5 ',
  '-12.5',
  '+7',
  '1e3',
  '1E3',
  '1e-3',
  '1e1000',
  '9e999',
  '1E309',
  '0x10',
  '0b1',
  '0o7',
  '1_000',
  '1,000',
  '1 000',
  'Infinity',
  '-Infinity',
  'NaN',
  '-0',
  '+0',
  '0',
  '00',
  '.5',
  '5.',
  '1.5e-3',
  '  3  ',
  '10000',
  '10001',
  '1000000000',
  '1000000001',
  '-1000000000.5',
  '1'.repeat(32),
  '1'.repeat(33),
  'true',
  'TRUE',
  'True',
  '1',
  'false',
  'FALSE',
  'yes',
  '24',
  '25.5',
  '100',
  '100.1',
  '-1',
  '1e2',
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
];
/** What JSON Lines can carry besides strings. */
const HOSTILE_JSON: unknown[] = [
  ...HOSTILE_TEXT,
  0,
  -0,
  1,
  -1,
  1.5,
  24,
  10000,
  10001,
  1e9,
  1e300,
  true,
  false,
  null,
  {},
  [],
  ['24'],
  { value: '24' },
];

function zodRow(value: unknown): InvoiceRow | undefined {
  const result = INVOICE_ROW_SCHEMA.safeParse(value);
  return result.success ? result.data : undefined;
}

function expectSameVerdict(fast: InvoiceRow | undefined, value: unknown): void {
  const expected = zodRow(value);
  expect(fast).toStrictEqual(expected);
  if (fast !== undefined && expected !== undefined) expect(Object.keys(fast)).toEqual(Object.keys(expected));
}

/** Every column set to every hostile value, then seeded rows with three hostile cells each. */
function* hostileRows(values: readonly unknown[], randomRows: number): Generator<Record<string, unknown>> {
  for (const column of INVOICE_COLUMNS) {
    for (const value of values) yield { ...GOOD, [column]: value };
  }
  const random = mulberry32(14);
  for (let i = 0; i < randomRows; i++) {
    const row: Record<string, unknown> = { ...GOOD };
    for (let j = 0; j < 3; j++) {
      row[INVOICE_COLUMNS[Math.floor(random() * INVOICE_COLUMNS.length)]] =
        values[Math.floor(random() * values.length)];
    }
    yield row;
  }
}

describe('row fast path', () => {
  it('accepts exactly the CSV rows zod accepts, with the same row', () => {
    const positions = INVOICE_COLUMNS.map((_, k) => k);
    let accepted = 0;
    let rows = 0;
    for (const row of hostileRows(HOSTILE_TEXT, 3000)) {
      const fast = acceptedRow(
        INVOICE_COLUMNS.map((c) => row[c]),
        positions,
      );
      expectSameVerdict(fast, row);
      rows++;
      if (fast !== undefined) accepted++;
    }
    // The corpus must exercise both verdicts in earnest.
    expect(accepted).toBeGreaterThan(rows * 0.1);
    expect(rows - accepted).toBeGreaterThan(rows * 0.3);
  });

  it('reads cells through the header positions', () => {
    const order = [...INVOICE_COLUMNS].reverse();
    const cells = order.map((c) => GOOD[c]);
    const positions = INVOICE_COLUMNS.map((c) => order.indexOf(c));
    expectSameVerdict(acceptedRow(cells, positions), GOOD);
    expect(acceptedRow(cells, positions)).toBeDefined();
  });

  it('accepts exactly the JSON values zod accepts, with the same row', () => {
    for (const row of hostileRows(HOSTILE_JSON, 3000)) expectSameVerdict(acceptedJsonRow(row), row);
    const shapes: unknown[] = [
      null,
      undefined,
      'INV-1',
      24,
      [],
      Object.values(GOOD),
      { ...GOOD, extra: '1' },
      { ...GOOD, extra: undefined },
      Object.fromEntries(Object.entries(GOOD).slice(1)),
      Object.assign(Object.create(null) as object, GOOD),
      JSON.parse(`{"__proto__":{"x":1},${JSON.stringify(GOOD).slice(1)}`),
      JSON.parse(JSON.stringify({ ...GOOD, invoiceId: undefined })),
      Object.assign(Object.create({ inherited: 1 }) as object, GOOD),
    ];
    // Odd shapes may be left to zod (the parser then asks it), but never accepted differently.
    for (const value of shapes) {
      const fast = acceptedJsonRow(value);
      if (fast !== undefined) expectSameVerdict(fast, value);
    }
    expect(acceptedJsonRow({ ...GOOD, extra: '1' })).toBeUndefined();
  });

  it('leaves the parser with zod verdicts and issues on hostile CSV and JSON Lines', async () => {
    const rows = [...hostileRows(HOSTILE_TEXT, 500)].filter((row) =>
      // CSV cannot carry a NUL (the splitter rejects the row first); JSON Lines covers it below.
      Object.values(row).every((v) => typeof v !== 'string' || !v.includes('\u0000')),
    );
    const quote = (v: unknown): string => `"${String(v).replaceAll('"', '""')}"`;
    const csv = [
      INVOICE_COLUMNS.join(','),
      ...rows.map((row) => INVOICE_COLUMNS.map((c) => quote(row[c])).join(',')),
    ].join('\n');
    const jsonRows = [...hostileRows(HOSTILE_JSON, 500)];
    const jsonl = jsonRows.map((row) => JSON.stringify(row)).join('\n');
    for (const [text, fileName, expected] of [
      [csv, 'hostile.csv', rows],
      [jsonl, 'hostile.jsonl', jsonRows.map((row) => JSON.parse(JSON.stringify(row)) as unknown)],
    ] as const) {
      const records: ParsedRecord[] = [];
      for await (const record of parseInvoiceBatch(Readable.from([Buffer.from(text)]), { fileName })) {
        records.push(record);
      }
      expect(records).toHaveLength(expected.length);
      records.forEach((record, i) => {
        const verdict = INVOICE_ROW_SCHEMA.safeParse(expected[i]);
        expect(record.kind).toBe(verdict.success ? 'accepted' : 'rejected');
        if (record.kind === 'accepted') expect(record.row).toStrictEqual(verdict.data);
        else
          expect(record.issues.map((issue) => issue.path)).toEqual(
            verdict.error?.issues.map((issue) => issue.path.join('.') || '(root)'),
          );
      });
    }
  });
});

describe('CSV row decoding (one decode per row)', () => {
  const header = `${INVOICE_COLUMNS.join(',')}\n`;
  const row = (invoiceId: Buffer): Buffer =>
    Buffer.concat([invoiceId, Buffer.from(',2024-07-01,SUP-1,FI,RCV-1,7680,EUR,10.5,1,false,24\n')]);

  async function parse(rows: Buffer[]): Promise<ParsedRecord[]> {
    const records: ParsedRecord[] = [];
    const source = Readable.from([Buffer.concat([Buffer.from(header), ...rows])]);
    for await (const record of parseInvoiceBatch(source, { fileName: 'bytes.csv' })) records.push(record);
    return records;
  }

  it('rejects invalid UTF-8 even where it decodes to as many units as bytes', async () => {
    const records = await parse([
      row(Buffer.from([0x49, 0xff, 0x31])), // one invalid byte → one U+FFFD
      row(Buffer.from([0x49, 0xc0, 0xaf])), // overlong '/'
      row(Buffer.from([0x49, 0xed, 0xa0, 0x80])), // a UTF-16 surrogate encoded as UTF-8
      row(Buffer.from([0x22, 0x49, 0xff, 0x22])), // inside quotes
    ]);
    expect(records.map((r) => r.kind === 'rejected' && r.reason)).toEqual(
      Array(4).fill('(row): row contains bytes that are not valid UTF-8'),
    );
  });

  it('keeps non-ASCII cells, a real U+FFFD and quoted text exact', async () => {
    const ids = ['INV-é', 'INV-\uFFFD', 'INV-𝟙"x"', 'INV-日本,1'];
    const records = await parse([
      row(Buffer.from(ids[0])),
      row(Buffer.from(ids[1])),
      row(Buffer.from(`"${ids[2].replaceAll('"', '""')}"`)),
      row(Buffer.from(`"${ids[3]}"`)),
      row(Buffer.from('"INV-""ascii"""')),
    ]);
    expect(records.map((r) => r.kind === 'accepted' && r.row.invoiceId)).toEqual([...ids, 'INV-"ascii"']);
  });
});
