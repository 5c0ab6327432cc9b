import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { NotFoundError, ValidationError } from '../../../shared/errors';
import {
  availableTraceZones,
  intensityAt,
  loadTraceSeries,
  parseTraceCsv,
} from '../../../shared/carbon/traceData';

const TRACES = path.join(__dirname, '../../../shared/carbon/traces');

test('every bundled trace is listed, unchanged from the manifest, and loads gap-free', () => {
  const manifest = JSON.parse(readFileSync(path.join(TRACES, 'manifest.json'), 'utf8')) as {
    file: string;
    zone: string;
    rows: number;
    first: string;
    sha256: string;
  }[];
  expect(availableTraceZones()).toEqual(manifest.map((m) => m.zone).sort());
  for (const entry of manifest) {
    const sha = createHash('sha256')
      .update(readFileSync(path.join(TRACES, entry.file)))
      .digest('hex');
    expect(sha).toBe(entry.sha256);
    const series = loadTraceSeries(entry.zone);
    expect(series.file).toBe(entry.file);
    expect(series.gramsPerKwh).toHaveLength(entry.rows);
    expect(series.firstStartMs).toBe(Date.parse(entry.first));
    expect(series.stepMinutes).toBe(60);
  }
});

test('values and years come from the CSV; lookups cover whole hours', () => {
  const de = loadTraceSeries('DE');
  expect(de.years).toEqual([2021, 2022, 2023, 2024]);
  expect(loadTraceSeries('DE')).toBe(de); // cached per process
  expect(intensityAt(de, Date.parse('2021-01-01T00:00:00Z'))).toBe(526.77);
  expect(intensityAt(de, Date.parse('2021-01-01T01:59:59Z'))).toBe(533.4);
  expect(loadTraceSeries('NL').years).toEqual([2022]);
});

test('lookups outside the trace and unknown zones are NOT_FOUND', () => {
  const nl = loadTraceSeries('NL');
  expect(() => intensityAt(nl, Date.parse('2023-01-01T00:00:00Z'))).toThrow(NotFoundError);
  expect(() => intensityAt(nl, Date.parse('2021-12-31T23:59:59Z'))).toThrow(/outside the NL trace/);
  expect(() => loadTraceSeries('IE')).toThrow(NotFoundError);
});

describe('parseTraceCsv rejects broken traces with the line', () => {
  const header = 'timestamp_utc,zone,gco2_per_kwh';
  const rows = ['2022-01-01T00:00:00Z,NL,300', '2022-01-01T01:00:00Z,NL,310', '2022-01-01T02:00:00Z,NL,320'];
  const csv = (lines: string[]) => [header, ...lines].join('\n') + '\n';

  test('a valid file parses', () => {
    const series = parseTraceCsv(csv(rows), 'NL', 'x.csv');
    expect(Array.from(series.gramsPerKwh)).toEqual([300, 310, 320]);
  });
  test.each([
    ['gap', [rows[0], rows[1], '2022-01-01T04:00:00Z,NL,320'], /line 4: gap/],
    ['duplicate', [rows[0], rows[1], rows[1]], /line 4: duplicate/],
    ['out of order', [rows[0], rows[2], rows[1]], /line 4: out-of-order/],
    ['zero intensity', [rows[0], '2022-01-01T01:00:00Z,NL,0', rows[2]], /line 3: intensity "0"/],
    ['wrong zone', [rows[0], '2022-01-01T01:00:00Z,DE,310', rows[2]], /line 3: zone "DE"/],
    ['local time', [rows[0], '2022-01-01 01:00:00,NL,310', rows[2]], /line 3: timestamp/],
  ])('%s', (_name, lines, message) => {
    expect(() => parseTraceCsv(csv(lines), 'NL', 'x.csv')).toThrow(ValidationError);
    expect(() => parseTraceCsv(csv(lines), 'NL', 'x.csv')).toThrow(message);
  });
  test('bad header', () => {
    expect(() => parseTraceCsv(`time,zone,value\n${rows.join('\n')}`, 'NL', 'x.csv')).toThrow(
      /line 1: header/,
    );
  });
});
