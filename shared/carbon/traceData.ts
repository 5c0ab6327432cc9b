import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { NotFoundError, ValidationError } from '../errors';

/**
 * The bundled Electricity Maps hourly traces (shared/carbon/traces/em_*.csv, see the README there for
 * provenance and the ODbL attribution). A series is held as one Float64Array per zone because the
 * replay and the what-if benchmarks index it by hour millions of times; the CSV is checked once on
 * load so a gap or duplicate can't silently shift every later hour.
 */
export interface TraceSeries {
  zone: string;
  file: string;
  stepMinutes: number;
  firstStartMs: number;
  /** Gap-free, one value per step, gCO2eq/kWh (average, lifecycle). */
  gramsPerKwh: Float64Array;
  years: number[];
}

const TRACE_FILE = /^em_(.+)_(\d{4})(?:-(\d{4}))?_hourly\.csv$/;
const HEADER = 'timestamp_utc,zone,gco2_per_kwh';
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/**
 * Source tree (ts-jest, ts-node) keeps the CSVs next to this file; the compiled copy in
 * dist/shared/carbon has no CSVs (tsc copies none), so it reads them from the source tree.
 */
function tracesDir(): string {
  const candidates = [
    path.join(__dirname, 'traces'),
    path.resolve(__dirname, '..', '..', '..', 'shared', 'carbon', 'traces'),
  ];
  const found = candidates.find((dir) => existsSync(path.join(dir, 'README.md')));
  if (!found) throw new NotFoundError(`Bundled carbon traces not found (looked in ${candidates.join(', ')})`);
  return found;
}

function traceFiles(): Map<string, string> {
  const byZone = new Map<string, string>();
  for (const file of readdirSync(tracesDir()).sort()) {
    const match = TRACE_FILE.exec(file);
    if (match) byZone.set(match[1], file);
  }
  return byZone;
}

let filesByZone: Map<string, string> | undefined;
const cache = new Map<string, TraceSeries>();

export function availableTraceZones(): string[] {
  filesByZone ??= traceFiles();
  return [...filesByZone.keys()].sort();
}

/** Loads (once per process) and checks the bundled trace of an Electricity Maps zone. */
export function loadTraceSeries(zone: string): TraceSeries {
  const cached = cache.get(zone);
  if (cached) return cached;
  filesByZone ??= traceFiles();
  const file = filesByZone.get(zone);
  if (!file) {
    throw new NotFoundError(
      `No bundled carbon trace for zone ${zone} (available: ${availableTraceZones().join(', ')})`,
      { details: { zone } },
    );
  }
  const series = parseTraceCsv(readFileSync(path.join(tracesDir(), file), 'utf8'), zone, file);
  cache.set(zone, series);
  return series;
}

/**
 * Parses and checks one trace CSV: exact header, ISO-8601 UTC timestamps, the expected zone on every
 * row, positive finite values, and a constant step (which rules out gaps, duplicates and reordering).
 * A row-by-row fast check rather than zod per row: 35 k rows per file, and the rules are this narrow.
 */
export function parseTraceCsv(text: string, zone: string, file: string): TraceSeries {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const fail = (lineNo: number, reason: string): never => {
    throw new ValidationError(`Invalid carbon trace ${file} line ${lineNo}: ${reason}`, [
      { path: `${file}:${lineNo}`, message: reason },
    ]);
  };
  if (lines[0] !== HEADER) fail(1, `header must be "${HEADER}"`);
  if (lines.length < 3) fail(lines.length, 'a trace needs at least two rows');
  const values = new Float64Array(lines.length - 1);
  const years = new Set<number>();
  let firstStartMs = 0;
  let stepMs = 0;
  let previousMs = 0;
  for (let i = 1; i < lines.length; i++) {
    const lineNo = i + 1;
    const cells = lines[i].split(',');
    if (cells.length !== 3) fail(lineNo, `expected 3 columns, got ${cells.length}`);
    const [timestamp, rowZone, valueText] = cells;
    if (!ISO_UTC.test(timestamp)) fail(lineNo, `timestamp "${timestamp}" is not ISO-8601 UTC`);
    const atMs = Date.parse(timestamp);
    if (Number.isNaN(atMs)) fail(lineNo, `timestamp "${timestamp}" is not a date`);
    if (rowZone !== zone) fail(lineNo, `zone "${rowZone}" where ${zone} was expected`);
    const value = Number(valueText);
    if (valueText === '' || !Number.isFinite(value) || value <= 0) {
      fail(lineNo, `intensity "${valueText}" is not a positive number`);
    }
    if (i === 1) firstStartMs = atMs;
    else if (i === 2) {
      stepMs = atMs - previousMs;
      if (stepMs <= 0 || stepMs % 60_000 !== 0) fail(lineNo, 'timestamps must increase by whole minutes');
    } else if (atMs - previousMs !== stepMs) {
      const kind =
        atMs === previousMs ? 'duplicate' : atMs < previousMs ? 'out-of-order' : 'gap or irregular';
      fail(lineNo, `${kind} timestamp ${timestamp} (step is ${stepMs / 60_000} min)`);
    }
    previousMs = atMs;
    values[i - 1] = value;
    years.add(new Date(atMs).getUTCFullYear());
  }
  return {
    zone,
    file,
    stepMinutes: stepMs / 60_000,
    firstStartMs,
    gramsPerKwh: values,
    years: [...years].sort((a, b) => a - b),
  };
}

/** Index of the step covering `atMs`, or -1 outside the trace. */
export function stepIndexAt(series: TraceSeries, atMs: number): number {
  const index = Math.floor((atMs - series.firstStartMs) / (series.stepMinutes * 60_000));
  return index >= 0 && index < series.gramsPerKwh.length ? index : -1;
}

/** Intensity of the step covering `atMs`; NotFoundError outside the trace's range. */
export function intensityAt(series: TraceSeries, atMs: number): number {
  const index = stepIndexAt(series, atMs);
  if (index < 0) {
    const endMs = series.firstStartMs + series.gramsPerKwh.length * series.stepMinutes * 60_000;
    throw new NotFoundError(
      `${new Date(atMs).toISOString()} is outside the ${series.zone} trace ` +
        `(${new Date(series.firstStartMs).toISOString()} – ${new Date(endMs).toISOString()})`,
      { details: { zone: series.zone, atMs } },
    );
  }
  return series.gramsPerKwh[index];
}
