import { NotFoundError, ProviderError, ValidationError, isGreenMlError } from '../errors';
import { AZURE_REGIONS, type AzureRegionInfo } from './azureRegions';
import { type CarbonProvider, checkHorizon, parseRange } from './provider';
import { type TraceSeries, availableTraceZones, intensityAt, loadTraceSeries } from './traceData';
import type { Forecast, IntensityPoint } from './types';
import { mulberry32 } from '../random';

/**
 * Replays the bundled real traces on an injected clock: a wall-clock instant maps to the same
 * hour-of-year in the configured trace year, so "now" in any year reads real data and points keep
 * wall-clock timestamps (the scheduler plans in real time).
 *
 * Forecasts: `perfect` is the future itself (an oracle, for upper bounds only). `realistic` is the
 * real future times a seeded multiplicative error that is autocorrelated hour to hour (forecast errors
 * come in runs, not white noise) and grows with lead time — roughly 3 % one hour out to ~18 % at 48 h,
 * the range reported for day-ahead grid-intensity forecasts. A scheduler tuned on perfect forecasts
 * looks better than it will ever be live, so realistic is the default.
 */
export type TraceForecastMode = 'realistic' | 'perfect';

export interface TraceProviderOptions {
  readonly year: number;
  readonly forecastMode: TraceForecastMode;
  readonly seed: number;
  readonly now: () => Date;
}

const HOUR_MS = 3_600_000;
/** Hour-to-hour correlation of the forecast error. */
const ERROR_AUTOCORRELATION = 0.85;
const SIGMA_AT_1H = 0.03;
const SIGMA_AT_48H = 0.18;
const SIGMA_MAX = 0.2;
/** Longest history a single call replays (guards against accidental multi-year arrays). */
const MAX_HISTORY_HOURS = 24 * 400;

/** Standard deviation of the relative forecast error at a lead time (hours ahead of issue). */
export function forecastErrorSigma(leadHours: number): number {
  const growth = Math.sqrt(Math.max(0, leadHours - 1) / 47);
  return Math.min(SIGMA_MAX, SIGMA_AT_1H + (SIGMA_AT_48H - SIGMA_AT_1H) * growth);
}

export class TraceProvider implements CarbonProvider {
  readonly name = 'trace';
  readonly signal = 'average' as const;

  constructor(private readonly options: TraceProviderOptions) {
    if (!Number.isInteger(options.year)) {
      throw new ValidationError(`Trace year must be an integer, got ${options.year}`);
    }
  }

  get forecastMode(): TraceForecastMode {
    return this.options.forecastMode;
  }

  zoneForRegion(region: AzureRegionInfo): string {
    return region.traceZone ?? region.zone;
  }

  /** The instant in the trace year that a wall-clock instant replays. */
  traceTimeMs(wallMs: number): number {
    const wallYear = new Date(wallMs).getUTCFullYear();
    const offsetMs = wallMs - Date.UTC(wallYear, 0, 1);
    const traceStartMs = Date.UTC(this.options.year, 0, 1);
    const traceYearMs = Date.UTC(this.options.year + 1, 0, 1) - traceStartMs;
    // A leap wall year has one more day than a plain trace year: its 31 December replays 1 January.
    return traceStartMs + (offsetMs % traceYearMs);
  }

  async latest(zone: string): Promise<IntensityPoint> {
    const series = this.series(zone);
    const hourMs = floorHour(this.options.now().getTime());
    return this.point(zone, series, hourMs, this.valueAt(series, hourMs), 'trace');
  }

  async history(zone: string, fromIso: string, toIso: string): Promise<IntensityPoint[]> {
    const { fromMs, toMs } = parseRange(fromIso, toIso);
    const series = this.series(zone);
    const firstMs = floorHour(fromMs);
    if ((toMs - firstMs) / HOUR_MS > MAX_HISTORY_HOURS) {
      throw new ValidationError(`Trace history is limited to ${MAX_HISTORY_HOURS} hours per call`);
    }
    const points: IntensityPoint[] = [];
    for (let atMs = firstMs; atMs < toMs; atMs += HOUR_MS) {
      points.push(this.point(zone, series, atMs, this.valueAt(series, atMs), 'trace'));
    }
    return points;
  }

  async forecast(zone: string, horizonHours: number): Promise<Forecast> {
    checkHorizon(horizonHours);
    const series = this.series(zone);
    const issueMs = floorHour(this.options.now().getTime());
    const realistic = this.options.forecastMode === 'realistic';
    const noise = realistic ? errorPath(this.options.seed, zone, issueMs, horizonHours) : undefined;
    const points: IntensityPoint[] = [];
    for (let k = 0; k < horizonHours; k++) {
      const atMs = issueMs + k * HOUR_MS;
      const truth = this.valueAt(series, atMs);
      const value = noise ? truth * Math.exp(forecastErrorSigma(k + 1) * noise[k]) : truth;
      points.push(this.point(zone, series, atMs, value, 'forecast'));
    }
    return {
      zone,
      generatedAt: new Date(issueMs).toISOString(),
      points,
      quality: realistic ? 'realistic-simulated' : 'perfect',
    };
  }

  private series(zone: string): TraceSeries {
    const traceZone = availableTraceZones().includes(zone) ? zone : traceZoneOf(zone);
    if (!traceZone) {
      throw new ProviderError(
        'NO_DATA',
        `trace: no bundled trace for zone ${zone} (available: ${availableTraceZones().join(', ')})`,
        this.name,
      );
    }
    const series = loadTraceSeries(traceZone);
    if (!series.years.includes(this.options.year)) {
      throw new ProviderError(
        'NO_DATA',
        `trace: ${series.file} covers ${series.years.join(', ')}, not ${this.options.year} (CARBON_TRACE_YEAR)`,
        this.name,
      );
    }
    return series;
  }

  private valueAt(series: TraceSeries, wallMs: number): number {
    try {
      return intensityAt(series, this.traceTimeMs(wallMs));
    } catch (error) {
      if (isGreenMlError(error) && error instanceof NotFoundError) {
        throw new ProviderError('NO_DATA', `trace: ${error.message}`, this.name, { cause: error });
      }
      throw error;
    }
  }

  private point(
    zone: string,
    series: TraceSeries,
    atMs: number,
    gramsPerKwh: number,
    source: 'trace' | 'forecast',
  ): IntensityPoint {
    return {
      startsAt: new Date(atMs).toISOString(),
      durationMinutes: series.stepMinutes,
      gramsPerKwh,
      zone,
      signal: this.signal,
      provider: `trace:${series.file.replace(/_hourly\.csv$/, '')}`,
      source,
    };
  }
}

/** Region sub-zones without their own trace (SE-SE3, NO-NO1) replay their national aggregate. */
function traceZoneOf(zone: string): string | undefined {
  return AZURE_REGIONS.find((r) => r.zone === zone && r.traceZone !== null)?.traceZone ?? undefined;
}

function floorHour(atMs: number): number {
  return Math.floor(atMs / HOUR_MS) * HOUR_MS;
}

/**
 * A standard-normal AR(1) path, deterministic for (seed, zone, issue hour): the same forecast is
 * issued every time the same hour is replayed, and consecutive issues are independent draws.
 */
function errorPath(seed: number, zone: string, issueMs: number, length: number): Float64Array {
  const random = mulberry32(hash32(`${seed}|${zone}|${issueMs}`));
  const innovationScale = Math.sqrt(1 - ERROR_AUTOCORRELATION ** 2);
  const path = new Float64Array(length);
  let previous = gaussian(random);
  path[0] = previous;
  for (let k = 1; k < length; k++) {
    previous = ERROR_AUTOCORRELATION * previous + innovationScale * gaussian(random);
    path[k] = previous;
  }
  return path;
}

/** FNV-1a, 32 bit. */
function hash32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Box–Muller; 1 - u keeps the logarithm away from zero. */
function gaussian(random: () => number): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
