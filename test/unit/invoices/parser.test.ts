import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { parse as parseCsvSync } from 'csv-parse/sync';
import { BatchUnreadableError, ValidationError } from '../../../shared/errors';
import { generateWeek, serializeCsv, serializeJsonl } from '../../../shared/invoices/generator';
import {
  BatchTally,
  type BatchSourceInfo,
  type ParsedRecord,
  detectFormat,
  parseInvoiceBatch,
} from '../../../shared/invoices/parser';
import { INVOICE_COLUMNS, INVOICE_ROW_SCHEMA, type InvoiceRow } from '../../../shared/invoices/schema';

const FIXTURES = join(__dirname, '../../fixtures/invoices');
const HEADER = INVOICE_COLUMNS.join(',');
const GOOD_CELLS = 'INV-1,2024-07-01,SUP-1,FI,RCV-1,7680,EUR,10.5,1,false,24';

async function parseAll(
  source: NodeJS.ReadableStream | AsyncIterable<Buffer>,
  info: BatchSourceInfo,
  options?: { maxFieldBytes?: number; maxRecordBytes?: number },
): Promise<{ records: ParsedRecord[]; tally: BatchTally; error?: unknown }> {
  const records: ParsedRecord[] = [];
  const tally = new BatchTally();
  try {
    for await (const record of parseInvoiceBatch(source, info, options)) {
      records.push(record);
      tally.add(record);
    }
    return { records, tally };
  } catch (error) {
    return { records, tally, error };
  }
}

/** The same bytes delivered in chunks of `size` bytes, to exercise every chunk boundary. */
async function* inChunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

const fixture = (name: string) => createReadStream(join(FIXTURES, name));

function rejected(records: ParsedRecord[]): Map<number, string> {
  return new Map(
    records
      .filter((r) => r.kind === 'rejected')
      .map((r) => [r.rowNumber, r.kind === 'rejected' ? r.reason : '']),
  );
}

function expectUnreadable(error: unknown, reason: BatchUnreadableError['reason'], message: RegExp): void {
  expect(error).toBeInstanceOf(BatchUnreadableError);
  const e = error as BatchUnreadableError;
  expect(e.reason).toBe(reason);
  expect(e.code).toBe('BATCH_UNREADABLE');
  expect(e.message).toMatch(message);
}

describe('detectFormat', () => {
  it('reads format and compression from the name, case-insensitively', () => {
    expect(detectFormat('a.csv')).toEqual({ format: 'csv', gzip: false });
    expect(detectFormat('dir/a.JSONL.GZ')).toEqual({ format: 'jsonl', gzip: true });
    expect(detectFormat('invoices-2024-07-01.csv.gz')).toEqual({ format: 'csv', gzip: true });
  });

  it('rejects other extensions with unsupported-format', () => {
    for (const name of ['a.xlsx', 'a.json', 'a.csv.zip', 'csv']) {
      let error: unknown;
      try {
        detectFormat(name);
      } catch (e) {
        error = e;
      }
      expectUnreadable(error, 'unsupported-format', /expected one of \.csv\.gz, \.jsonl\.gz, \.csv, \.jsonl/);
    }
  });

  it('makes parseInvoiceBatch fail for an unsupported name unless the format is given', async () => {
    const data = Buffer.from(`${HEADER}\n${GOOD_CELLS}\n`);
    expectUnreadable(
      (await parseAll(Readable.from([data]), { fileName: 'a.txt' })).error,
      'unsupported-format',
      /a\.txt/,
    );
    const given = await parseAll(Readable.from([data]), { fileName: 'upload.bin', format: 'csv' });
    expect(given.error).toBeUndefined();
    expect(given.tally.summary().accepted).toBe(1);
  });
});

describe('round trip: generated rows -> file bytes -> parser', () => {
  const tricky: InvoiceRow[] = [
    {
      invoiceId: 'INV, "quoted"',
      issuedAt: '2024-07-01',
      supplierId: 'SUP-Ä-ö',
      supplierCountry: 'SE',
      receiverId: 'RCV\nmulti-line',
      accountCode: '7680',
      currency: 'SEK',
      amountNet: -1234.56,
      lineCount: 3,
      reverseCharge: true,
      vatRatePercent: 25.5,
    },
  ];
  const rows = [
    ...tricky,
    ...generateWeek({ scenario: 'new-market', weeks: 12, rowsPerWeek: 3000, seed: 7 }, 9),
  ];

  it.each([
    ['csv', 'w.csv', false],
    ['csv.gz', 'w.csv.gz', true],
    ['jsonl', 'w.jsonl', false],
    ['jsonl.gz', 'w.jsonl.gz', true],
  ])('%s gives back identical rows, whatever the chunking', async (_label, fileName, gzip) => {
    const text = fileName.includes('csv')
      ? [...serializeCsv(rows)].join('')
      : [...serializeJsonl(rows)].join('');
    const bytes = gzip ? gzipSync(text) : Buffer.from(text);
    for (const chunkSize of [1, 7, 4096, bytes.length]) {
      const sample = chunkSize === 1 ? bytes.subarray(0, gzip ? bytes.length : 4000) : bytes;
      if (chunkSize === 1 && gzip) continue; // one-byte gzip chunks only slow the test down
      const { records, error } = await parseAll(inChunks(sample, chunkSize), { fileName });
      expect(error).toBeUndefined();
      if (sample !== bytes) continue;
      expect(records.every((r) => r.kind === 'accepted')).toBe(true);
      expect(records.map((r) => (r.kind === 'accepted' ? r.row : null))).toEqual(rows);
      expect(records.map((r) => r.rowNumber)).toEqual(rows.map((_, i) => i + 1));
    }
  });

  it('agrees with csv-parse on the same CSV (quotes, escaped quotes, line breaks in cells)', async () => {
    const text = [...serializeCsv(rows.slice(0, 500))].join('');
    const reference = (parseCsvSync(text, { columns: true }) as Record<string, string>[]).map((r) =>
      INVOICE_ROW_SCHEMA.parse(r),
    );
    const { records } = await parseAll(inChunks(Buffer.from(text), 333), { fileName: 'x.csv' });
    expect(records.map((r) => (r.kind === 'accepted' ? r.row : r))).toEqual(reference);
  });

  it('sniffs gzip by its magic bytes even under a plain name', async () => {
    const bytes = gzipSync([...serializeCsv(rows.slice(0, 10))].join(''));
    const { records, error } = await parseAll(Readable.from([bytes]), { fileName: 'mislabelled.csv' });
    expect(error).toBeUndefined();
    expect(records).toHaveLength(10);
  });

  it('reads a committed gzip JSONL fixture', async () => {
    const { tally, error } = await parseAll(fixture('valid.jsonl.gz'), { fileName: 'valid.jsonl.gz' });
    expect(error).toBeUndefined();
    expect(tally.summary()).toMatchObject({ rowsRead: 2, accepted: 2, rejected: 0 });
  });

  it('handles CRLF, a BOM and quoted header-order changes', async () => {
    const columns = [...INVOICE_COLUMNS].reverse();
    const values: Record<string, string> = {
      invoiceId: 'INV-9',
      issuedAt: '2024-07-03',
      supplierId: 'S',
      supplierCountry: 'FI',
      receiverId: 'R',
      accountCode: '7680',
      currency: 'EUR',
      amountNet: '5',
      lineCount: '1',
      reverseCharge: 'FALSE',
      vatRatePercent: '14',
    };
    const text = `\uFEFF${columns.map((c) => `"${c}"`).join(',')}\r\n${columns.map((c) => values[c]).join(',')}\r\n`;
    const { records, error } = await parseAll(Readable.from([Buffer.from(text)]), { fileName: 'x.csv' });
    expect(error).toBeUndefined();
    expect(records).toEqual([
      {
        kind: 'accepted',
        rowNumber: 1,
        row: expect.objectContaining({ invoiceId: 'INV-9', vatRatePercent: 14, reverseCharge: false }),
      },
    ]);
  });
});

describe('one strict number grammar and a plausible date range', () => {
  const cellsWith = (column: string, value: string): string => {
    const cells = GOOD_CELLS.split(',');
    cells[INVOICE_COLUMNS.indexOf(column as keyof InvoiceRow)] = value;
    return cells.join(',');
  };

  it.each([
    ['amountNet', '0x10'],
    ['amountNet', '0o7'],
    ['amountNet', '0b1011'],
    ['amountNet', 'Infinity'],
    ['amountNet', '-Infinity'],
    ['amountNet', 'NaN'],
    ['amountNet', '1_000'],
    ['amountNet', '"1,5"'],
    ['amountNet', '.5'],
    ['amountNet', '1e999'],
    ['lineCount', '0x10'],
    ['lineCount', '1e2'],
    ['lineCount', '+3'],
    ['lineCount', '2.0'],
    ['vatRatePercent', '0b1011'],
    ['vatRatePercent', '-0'],
    ['vatRatePercent', '2.4e1'],
    ['vatRatePercent', ''],
    ['issuedAt', '0000-01-01'],
    ['issuedAt', '1969-12-31'],
    ['issuedAt', '2101-01-01'],
    ['issuedAt', '20224-01-01'],
  ])('%s %j is rejected, naming the column', async (column, value) => {
    const csv = `${HEADER}\n${cellsWith(column, value)}\n`;
    const { records } = await parseAll(Readable.from([Buffer.from(csv)]), { fileName: 'b.csv' });
    expect(records).toHaveLength(1);
    const [record] = records;
    expect(record.kind).toBe('rejected');
    expect(record.kind === 'rejected' && record.issues.map((i) => i.path)).toEqual([column]);
    expect(record.kind === 'rejected' && record.reason).toMatch(new RegExp(`^${column}: `));
  });

  it('accepts plain decimals with sign and exponent where the column allows, in CSV and JSON Lines', async () => {
    const csv = `${HEADER}\n${cellsWith('amountNet', ' -1.25e3 ')}\n${cellsWith('issuedAt', '1970-01-01')}\n`;
    const { records } = await parseAll(Readable.from([Buffer.from(csv)]), { fileName: 'b.csv' });
    expect(records.map((r) => r.kind)).toEqual(['accepted', 'accepted']);
    expect(records[0].kind === 'accepted' && records[0].row.amountNet).toBe(-1250);

    const good = INVOICE_ROW_SCHEMA.parse(parseCsvSync(`${HEADER}\n${GOOD_CELLS}\n`, { columns: true })[0]);
    const lines = [
      JSON.stringify({ ...good, amountNet: 12.5, lineCount: 3 }),
      JSON.stringify({ ...good, amountNet: '0x10' }),
      JSON.stringify({ ...good, lineCount: 2.5 }),
    ].join('\n');
    const jsonl = await parseAll(Readable.from([Buffer.from(`${lines}\n`)]), { fileName: 'b.jsonl' });
    expect(jsonl.records.map((r) => (r.kind === 'rejected' ? r.issues[0].path : 'ok'))).toEqual([
      'ok',
      'amountNet',
      'lineCount',
    ]);
  });
});

describe('malformed rows are rejected one by one, with the row number and a specific reason', () => {
  it('CSV corpus: every defect gets its own reason and every row is accounted for', async () => {
    const { records, tally, error } = await parseAll(fixture('mixed-defects.csv'), {
      fileName: 'mixed-defects.csv',
    });
    expect(error).toBeUndefined();
    const summary = tally.summary();
    expect(summary).toMatchObject({ rowsRead: 14, accepted: 2, rejected: 12, rejectionsTruncated: false });
    expect(summary.accepted + summary.rejected).toBe(summary.rowsRead);
    expect(records.filter((r) => r.kind === 'accepted').map((r) => r.rowNumber)).toEqual([1, 12]);
    const reasons = rejected(records);
    expect(reasons.get(2)).toMatch(/^amountNet: expected a plain decimal number.*\(got "twelve"\)$/);
    expect(reasons.get(3)).toBe('issuedAt: expected an ISO date (YYYY-MM-DD) (got "2024-02-30")');
    expect(reasons.get(4)).toBe('lineCount: must be at least 1 (got "0")');
    expect(reasons.get(5)).toBe('lineCount: must not be negative (got "-3")');
    expect(reasons.get(6)).toBe('supplierCountry: unknown ISO 3166 country code (got "XX")');
    expect(reasons.get(7)).toBe('currency: unknown ISO 4217 currency code (got "ABC")');
    expect(reasons.get(8)).toBe('(row): row has 10 cells but the header has 11: missing vatRatePercent');
    expect(reasons.get(9)).toBe('(row): row has 12 cells but the header has 11: 1 extra');
    expect(reasons.get(10)).toBe('(row): row contains bytes that are not valid UTF-8');
    expect(reasons.get(11)).toMatch(/^invoiceId: invoiceId has a stray double quote/);
    expect(reasons.get(13)).toMatch(/^vatRatePercent: required \(got ""\)$/);
    expect(reasons.get(14)).toMatch(/^issuedAt: expected an ISO date.*; reverseCharge: .*\(got "maybe"\)$/);
    const multiLine = records.find((r) => r.rowNumber === 12);
    expect(multiLine?.kind === 'accepted' && multiLine.row.invoiceId).toBe('INV-12\nwith a line break');
  });

  it('JSONL corpus: invalid JSON, non-objects, extra and missing keys, bad bytes', async () => {
    const { records, tally, error } = await parseAll(fixture('mixed-defects.jsonl'), {
      fileName: 'mixed-defects.jsonl',
    });
    expect(error).toBeUndefined();
    expect(tally.summary()).toMatchObject({ rowsRead: 8, accepted: 2, rejected: 6 });
    const reasons = rejected(records);
    expect(reasons.get(2)).toMatch(/^\(row\): line is not valid JSON: /);
    expect(reasons.get(3)).toMatch(/^\(root\): .*expected object/);
    expect(reasons.get(4)).toMatch(/Unrecognized key.*"comment"/);
    expect(reasons.get(5)).toBe('currency: required');
    expect(reasons.get(6)).toMatch(/^amountNet: .*\(got "abc"\)$/);
    expect(reasons.get(7)).toBe('(row): row contains bytes that are not valid UTF-8');
    const last = records[7];
    expect(last.kind === 'accepted' && last.row).toMatchObject({
      invoiceId: 'J-8',
      reverseCharge: true,
      amountNet: 12.5,
    });
  });

  it('rejects a row with NUL bytes past the sniffed head, and an unterminated quote at the end', async () => {
    // 200 good rows push the NUL past the first 8 KiB, where it would make the whole file "binary".
    const data = Buffer.concat([
      Buffer.from(`${HEADER}\n${`${GOOD_CELLS}\n`.repeat(200)}INV-2,2024-07-01,SUP`),
      Buffer.from([0]),
      Buffer.from(`,FI,RCV-1,7680,EUR,1,1,false,24\n${GOOD_CELLS}\n"INV-4,2024-07-01`),
    ]);
    const { records, tally, error } = await parseAll(Readable.from([data]), { fileName: 'x.csv' });
    expect(error).toBeUndefined();
    expect(tally.summary()).toMatchObject({ rowsRead: 203, accepted: 201, rejected: 2 });
    expect(rejected(records).get(201)).toBe('(row): row contains NUL bytes (binary data)');
    expect(rejected(records).get(203)).toBe(
      'invoiceId: invoiceId opens a double quote that is never closed before the end of the file',
    );
  });

  it('rejects malformed country codes as rows (they used to throw RangeError inside the schema)', async () => {
    const codes = ['F1', '??', 'F', 'FIN', '1'];
    const lines = codes.map((code) => GOOD_CELLS.replace(',FI,', `,${code},`));
    const data = Buffer.from(`${HEADER}\n${lines.join('\n')}\n`);
    const { records, error } = await parseAll(Readable.from([data]), { fileName: 'x.csv' });
    expect(error).toBeUndefined();
    expect(records).toHaveLength(codes.length);
    for (const record of records) {
      expect(record.kind === 'rejected' && record.reason).toMatch(
        /^supplierCountry: expected an ISO 3166 alpha-2 country code/,
      );
    }
  });

  it('rejects a cell over maxFieldBytes and validates the options', async () => {
    const long = 'x'.repeat(100);
    const data = Buffer.from(`${HEADER}\n${GOOD_CELLS.replace('SUP-1', long)}\n${GOOD_CELLS}\n`);
    const { records } = await parseAll(Readable.from([data]), { fileName: 'x.csv' }, { maxFieldBytes: 50 });
    expect(rejected(records).get(1)).toBe(
      'supplierId: supplierId is 100 bytes, more than the 50-byte cell limit',
    );
    expect(records[1].kind).toBe('accepted');
    const bad = await parseAll(Readable.from([data]), { fileName: 'x.csv' }, { maxFieldBytes: -1 });
    expect(bad.error).toBeInstanceOf(ValidationError);
    expect((bad.error as Error).message).toMatch(/maxFieldBytes/);
  });

  it('caps the rejection list but never the counts', async () => {
    const lines = Array.from({ length: 30 }, (_, i) => GOOD_CELLS.replace('10.5', i % 3 === 0 ? '1' : 'bad'));
    const data = Buffer.from(`${HEADER}\n${lines.join('\n')}\n`);
    const tally = new BatchTally(5);
    for await (const record of parseInvoiceBatch(Readable.from([data]), { fileName: 'x.csv' }))
      tally.add(record);
    const summary = tally.summary();
    expect(summary).toMatchObject({ rowsRead: 30, accepted: 10, rejected: 20, rejectionsTruncated: true });
    expect(summary.rejections.map((r) => r.rowNumber)).toEqual([2, 3, 5, 6, 8]);
  });
});

describe('a 50 MB single field', () => {
  const FIELD_BYTES = 50 * 1024 * 1024;

  /** header, a good row, a row whose second cell is 50 MB (streamed in 64 KiB pieces), a good row. */
  async function* hugeCsv(quoted: boolean): AsyncGenerator<Buffer> {
    yield Buffer.from(`${HEADER}\n${GOOD_CELLS}\nINV-2,${quoted ? '"' : ''}`);
    const piece = Buffer.alloc(64 * 1024, quoted ? 'a,\n' : 'a');
    for (let sent = 0; sent < FIELD_BYTES; sent += piece.length) yield piece;
    yield Buffer.from(
      `${quoted ? '"' : ''},SUP-1,FI,RCV-1,7680,EUR,1,1,false,24\n${GOOD_CELLS.replace('INV-1', 'INV-3')}\n`,
    );
  }

  it.each([false, true])(
    'CSV (quoted: %s): rejects that row, keeps reading, and holds at most one row',
    async (quoted) => {
      const before = process.memoryUsage().rss;
      const { records, tally, error } = await parseAll(hugeCsv(quoted), { fileName: 'big.csv' });
      expect(error).toBeUndefined();
      expect(tally.summary()).toMatchObject({ rowsRead: 3, accepted: 2, rejected: 1 });
      expect(rejected(records).get(2)).toMatch(
        /^\(row\): row is 524\d{5} bytes, more than the 1048576-byte row limit; it was skipped unread$/,
      );
      expect(records[2].kind === 'accepted' && records[2].row.invoiceId).toBe('INV-3');
      // Generous bound: buffering the row would need > 50 MB (and > 100 MB as a JS string).
      expect(process.memoryUsage().rss - before).toBeLessThan(45 * 1024 * 1024);
    },
  );

  it('JSONL: rejects that line and keeps reading', async () => {
    async function* hugeJsonl(): AsyncGenerator<Buffer> {
      const good = JSON.stringify(
        INVOICE_ROW_SCHEMA.parse(
          Object.fromEntries(INVOICE_COLUMNS.map((c, i) => [c, GOOD_CELLS.split(',')[i]])),
        ),
      );
      yield Buffer.from(`${good}\n{"invoiceId":"`);
      const piece = Buffer.alloc(64 * 1024, 'b');
      for (let sent = 0; sent < FIELD_BYTES; sent += piece.length) yield piece;
      yield Buffer.from(`"}\n${good}\n`);
    }
    const { records, tally } = await parseAll(hugeJsonl(), { fileName: 'big.jsonl' });
    expect(tally.summary()).toMatchObject({ rowsRead: 3, accepted: 2, rejected: 1 });
    expect(rejected(records).get(2)).toMatch(/row is 524\d{5} bytes, more than the 1048576-byte row limit/);
  });
});

describe('batches that are not batches fail whole with a specific reason', () => {
  it.each([
    ['empty.csv', 'empty', /is empty \(0 bytes\)/],
    ['header-only.csv', 'empty', /has a header but no data rows/],
    ['blank-lines.jsonl', 'empty', /no rows \(only blank lines\)/],
    ['image-named.csv', 'binary', /looks like a PNG image/],
    ['utf16.csv', 'bad-encoding', /UTF-16 \(LE\); save it as UTF-8/],
    ['no-header.csv', 'bad-header', /no header line/],
  ] as const)('%s -> %s', async (name, reason, message) => {
    const { records, error } = await parseAll(fixture(name), { fileName: name });
    expect(records).toEqual([]);
    expectUnreadable(error, reason, message);
  });

  it('names missing and unknown header columns', async () => {
    const { error } = await parseAll(fixture('missing-columns.csv'), { fileName: 'missing-columns.csv' });
    expectUnreadable(
      error,
      'bad-header',
      /missing columns "currency", "vatRatePercent"; unknown columns "vatRate"/,
    );
    expect((error as BatchUnreadableError).details).toMatchObject({
      missing: ['currency', 'vatRatePercent'],
      unknown: ['vatRate'],
    });
  });

  it('rejects duplicate header columns', async () => {
    const data = Buffer.from(`${HEADER},amountNet\n${GOOD_CELLS},1\n`);
    expectUnreadable(
      (await parseAll(Readable.from([data]), { fileName: 'x.csv' })).error,
      'bad-header',
      /duplicate columns "amountNet"/,
    );
  });

  it('treats random bytes and gzip of empty text as unreadable', async () => {
    let state = 12345;
    const random = Buffer.alloc(20000, 0).map(() => (state = (state * 1103515245 + 12345) >>> 0) >>> 24);
    expectUnreadable(
      (await parseAll(Readable.from([random]), { fileName: 'r.jsonl' })).error,
      'binary',
      /not text/,
    );
    expectUnreadable(
      (await parseAll(Readable.from([gzipSync('')]), { fileName: 'e.csv.gz' })).error,
      'empty',
      /decompresses to 0 bytes/,
    );
  });

  it('truncated gzip: the rows before the cut stay counted and the error names where it stopped', async () => {
    const rows = [...generateWeek({ scenario: 'stable', weeks: 1, rowsPerWeek: 5000, seed: 1 }, 0)];
    const full = gzipSync([...serializeCsv(rows)].join(''));
    const cut = full.subarray(0, Math.floor(full.length * 0.6));
    const { records, tally, error } = await parseAll(inChunks(cut, 8192), { fileName: 'cut.csv.gz' });
    expectUnreadable(error, 'truncated', /gzip data is truncated.*stopped after row \d+/);
    const read = tally.summary().rowsRead;
    expect(read).toBeGreaterThan(1000);
    expect(read).toBeLessThan(5000);
    expect((error as BatchUnreadableError).details).toMatchObject({ afterRow: read });
    expect(records.every((r) => r.kind === 'accepted')).toBe(true);
  });

  it('corrupt gzip (damaged bytes in the middle) also fails as truncated', async () => {
    const rows = [...generateWeek({ scenario: 'stable', weeks: 1, rowsPerWeek: 3000, seed: 1 }, 0)];
    const damaged = Buffer.from(gzipSync([...serializeCsv(rows)].join('')));
    for (let i = Math.floor(damaged.length / 2); i < damaged.length / 2 + 64; i++) damaged[i] ^= 0xa5;
    const { error } = await parseAll(inChunks(damaged, 4096), { fileName: 'bad.csv.gz' });
    expectUnreadable(error, 'truncated', /gzip data is corrupt/);
  });

  it('passes a failing source through unchanged (it is not a batch problem)', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from(`${HEADER}\n${GOOD_CELLS}\n`.repeat(1).padEnd(9000, '\n'));
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    }
    const { records, error } = await parseAll(failing(), { fileName: 'x.csv' });
    expect(records).toHaveLength(1);
    expect(error).not.toBeInstanceOf(BatchUnreadableError);
    expect((error as Error).message).toBe('socket hang up');
  });

  it('stops cleanly and closes the source when the consumer stops early', async () => {
    const path = join(FIXTURES, 'mixed-defects.csv');
    const stream = createReadStream(path, { highWaterMark: 64 });
    for await (const record of parseInvoiceBatch(stream, { fileName: 'mixed-defects.csv' })) {
      expect(record.rowNumber).toBe(1);
      break;
    }
    expect(stream.destroyed).toBe(true);
    expect((await readFile(path)).length).toBeGreaterThan(0);
  });
});
