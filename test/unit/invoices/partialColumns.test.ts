import { Readable } from 'node:stream';
import { BatchUnreadableError } from '../../../shared/errors';
import { generateWeek, serializeCsv, serializeJsonl } from '../../../shared/invoices/generator';
import {
  parseInvoiceBatch,
  parsePartialBatchChunks,
  type ParsedRecord,
} from '../../../shared/invoices/parser';
import {
  INVOICE_COLUMNS,
  type InvoiceColumnName,
  type InvoiceRow,
  type PartialInvoiceRow,
} from '../../../shared/invoices/schema';

const ROWS: InvoiceRow[] = [
  ...generateWeek({ scenario: 'stable', weeks: 1, rowsPerWeek: 200, seed: 4, startDate: '2024-08-26' }, 0),
];

async function parsePartial(text: string, fileName: string) {
  const columns: (readonly InvoiceColumnName[])[] = [];
  const records: ParsedRecord<PartialInvoiceRow>[] = [];
  try {
    for await (const chunk of parsePartialBatchChunks(
      Readable.from([Buffer.from(text)]),
      { fileName },
      {
        onColumns: (c) => {
          // Told before the first row, and only once.
          expect(records).toEqual([]);
          columns.push(c);
        },
      },
    ))
      records.push(...chunk);
    return { columns, records, error: undefined };
  } catch (error) {
    return { columns, records, error };
  }
}

async function parseWhole(text: string, fileName: string): Promise<ParsedRecord[]> {
  const out: ParsedRecord[] = [];
  for await (const r of parseInvoiceBatch(Readable.from([Buffer.from(text)]), { fileName })) out.push(r);
  return out;
}

/** CSV of `rows` with only `columns`, in the given (not schema) order. */
function csvOf(rows: readonly InvoiceRow[], columns: readonly InvoiceColumnName[]): string {
  return (
    [columns.join(','), ...rows.map((r) => columns.map((c) => String(r[c])).join(','))].join('\n') + '\n'
  );
}

const without = (...dropped: InvoiceColumnName[]) => INVOICE_COLUMNS.filter((c) => !dropped.includes(c));
const pick = (row: InvoiceRow, columns: readonly InvoiceColumnName[]) =>
  Object.fromEntries(columns.map((c) => [c, row[c]]));

describe('batches that carry only some columns', () => {
  it('a full batch parses exactly as with every column required, and reports every column', async () => {
    for (const [text, name] of [
      [[...serializeCsv(ROWS)].join(''), 'b.csv'],
      [[...serializeJsonl(ROWS)].join(''), 'b.jsonl'],
    ] as const) {
      const partial = await parsePartial(text, name);
      expect(partial.error).toBeUndefined();
      expect(partial.columns).toEqual([INVOICE_COLUMNS]);
      expect(partial.records).toEqual(await parseWhole(text, name));
    }
  });

  it('validates the columns present, typed, and reports which they are (any header order)', async () => {
    const columns = without('accountCode', 'vatRatePercent').reverse();
    const text = csvOf(ROWS, columns);
    const partial = await parsePartial(text, 'p.csv');
    expect(partial.error).toBeUndefined();
    expect(partial.columns).toEqual([without('accountCode', 'vatRatePercent')]);
    expect(partial.records).toHaveLength(ROWS.length);
    expect(partial.records.map((r) => (r.kind === 'accepted' ? r.row : r))).toEqual(
      ROWS.map((row) => pick(row, columns)),
    );
    // Typed as they would be in a full batch.
    const first = partial.records[0];
    expect(first.kind === 'accepted' && typeof first.row.amountNet).toBe('number');
    expect(first.kind === 'accepted' && typeof first.row.reverseCharge).toBe('boolean');

    // The same batch is unreadable where every column is required.
    await expect(parseWhole(text, 'p.csv')).rejects.toThrow(
      /missing columns "accountCode", "vatRatePercent"/,
    );
  });

  it('keeps row-level validation and rejection accounting for the columns present', async () => {
    const columns = without('accountCode');
    const lines = csvOf(ROWS.slice(0, 3), columns).split('\n');
    lines[2] = lines[2].replace(/,(true|false),/, ',maybe,');
    const partial = await parsePartial(lines.join('\n'), 'bad.csv');
    expect(partial.records.map((r) => r.kind)).toEqual(['accepted', 'rejected', 'accepted']);
    expect(partial.records[1]).toMatchObject({ rowNumber: 2, issues: [{ path: 'reverseCharge' }] });
  });

  it('still refuses unknown or duplicate columns and a header without invoiceId', async () => {
    const unknown = await parsePartial(`${without('vatRatePercent').join(',')},vatRate\n`, 'u.csv');
    expect(unknown.error).toBeInstanceOf(BatchUnreadableError);
    expect((unknown.error as Error).message).toMatch(/unknown columns "vatRate"/);
    const noId = await parsePartial(csvOf(ROWS.slice(0, 2), without('invoiceId')), 'n.csv');
    expect((noId.error as Error).message).toMatch(/missing columns "invoiceId"/);
    const dup = await parsePartial(`invoiceId,amountNet,amountNet\nI-1,1,1\n`, 'd.csv');
    expect((dup.error as Error).message).toMatch(/duplicate columns "amountNet"/);
    expect(noId.columns).toEqual([]);
  });

  it('JSON Lines: the first object row sets the columns; a later row with others is rejected, not the batch', async () => {
    const columns = without('accountCode');
    const lines = ROWS.slice(0, 3).map((r) => JSON.stringify(pick(r, columns)));
    lines[1] = JSON.stringify(ROWS[1]); // carries accountCode too
    const partial = await parsePartial(['not json', ...lines].join('\n') + '\n', 'j.jsonl');
    expect(partial.error).toBeUndefined();
    expect(partial.columns).toEqual([columns]);
    expect(partial.records.map((r) => r.kind)).toEqual(['rejected', 'accepted', 'rejected', 'accepted']);
    expect(partial.records[2]).toMatchObject({
      kind: 'rejected',
      reason: expect.stringMatching(/accountCode/),
    });
  });
});
