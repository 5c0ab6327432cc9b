import { z } from 'zod';
import { ProviderError } from '../errors';
import { parseWith } from '../validation';
import { AZURE_REGIONS } from './azureRegions';
import RANGES_JSON from './plausibleRanges.json';
import type { Forecast, IntensityPoint, SignalType } from './types';

/**
 * Carbon data is checked before it is believed: a scheduler that trusts 0.0001 g/kWh for Germany
 * moves every retrain there. Each check that fails names why (`CarbonRejection`), and the fallback
 * chain answers from the next link instead, with that reason in its trail.
 *
 * - Physical: no grid anywhere is below 1 or above 2,000 gCO2eq/kWh (lifecycle coal ≈ 1,000; a
 *   marginal coal unit ≈ 1,100 g/kWh).
 * - Per zone (average signals only): the range in plausibleRanges.json, derived from the bundled real
 *   traces or the annual average (each bound says where it came from). Marginal rates and the UK API's
 *   direct (operational) values swing far outside a lifecycle-average range, so they get the physical
 *   check only.
 * - Age: a reading from the future beyond the clock-skew allowance, or older than the live limit, is
 *   not live; the same for a forecast's issue time.
 * - Forecasts: sorted, duplicate slots removed, a gap of up to `maxGapMinutes` filled by linear
 *   interpolation between its neighbours (labelled `interpolated`: a missing hour between 180 g and
 *   220 g is most likely near 200 g), a longer gap ends the forecast there (reported); the result
 *   must cover now.
 */
export type CarbonRejection =
  'implausible-value' | 'zone-mismatch' | 'from-the-future' | 'stale' | 'forecast-not-current' | 'empty';

export interface ZoneRange {
  readonly minGramsPerKwh: number;
  readonly maxGramsPerKwh: number;
  /** Where the bound comes from (trace file and its extremes, or the annual average). */
  readonly source: string;
}

export const PHYSICAL_RANGE: ZoneRange = {
  minGramsPerKwh: 1,
  maxGramsPerKwh: 2000,
  source: 'physical: no grid is below 1 or above 2,000 gCO2eq/kWh',
};

const ZONE_RANGE = z
  .strictObject({
    minGramsPerKwh: z.number().positive(),
    maxGramsPerKwh: z.number().positive(),
    source: z.string().min(1),
  })
  .refine((r) => r.minGramsPerKwh < r.maxGramsPerKwh, 'min must be below max');
const RANGES = parseWith(z.record(z.string(), ZONE_RANGE), RANGES_JSON, 'shared/carbon/plausibleRanges.json');

/** Which basis a provider's values are on; only `lifecycle-average` is compared with the zone range. */
export type ValueBasis = 'lifecycle-average' | 'direct-average' | 'marginal';

export function basisFor(signal: SignalType, provider: string): ValueBasis {
  if (signal === 'marginal') return 'marginal';
  return provider === 'ukcarbonintensity' ? 'direct-average' : 'lifecycle-average';
}

/** The range a value for this zone key must fall in; zone keys may be EM zones or Azure region names. */
export function plausibleRange(zone: string, basis: ValueBasis): ZoneRange {
  if (basis !== 'lifecycle-average') return PHYSICAL_RANGE;
  const direct = RANGES[zone];
  if (direct) return direct;
  const region = AZURE_REGIONS.find((r) => r.region === zone);
  return (region && RANGES[region.zone]) ?? PHYSICAL_RANGE;
}

export interface CheckOptions {
  readonly nowMs: number;
  /** A reading/forecast older than this is not live. */
  readonly liveMaxAgeMinutes: number;
  /** How far in the future a timestamp may lie before it counts as wrong (clocks differ). */
  readonly clockSkewMinutes: number;
  /** Longest gap filled by interpolation; a longer gap ends the forecast. */
  readonly maxGapMinutes: number;
}

export function rejection(
  reason: CarbonRejection,
  provider: string,
  message: string,
  details: Record<string, unknown> = {},
): ProviderError {
  return new ProviderError('PROVIDER_RESPONSE_INVALID', `${provider}: ${message}`, provider, {
    details: { rejection: reason, ...details },
  });
}

/** The rejection reason carried by an error from this module, if any. */
export function rejectionOf(error: unknown): CarbonRejection | undefined {
  if (!(error instanceof ProviderError)) return undefined;
  const reason = error.details.rejection;
  return typeof reason === 'string' ? (reason as CarbonRejection) : undefined;
}

const MS_PER_MINUTE = 60_000;

function checkValue(point: IntensityPoint, askedZone: string): void {
  const range = plausibleRange(askedZone, basisFor(point.signal, point.provider));
  const physical = PHYSICAL_RANGE;
  const within = (r: ZoneRange): boolean =>
    point.gramsPerKwh >= r.minGramsPerKwh && point.gramsPerKwh <= r.maxGramsPerKwh;
  if (!within(physical) || !within(range)) {
    const bound = within(physical) ? range : physical;
    throw rejection(
      'implausible-value',
      point.provider,
      `${point.gramsPerKwh} gCO2eq/kWh for ${askedZone} at ${point.startsAt} is outside ${bound.minGramsPerKwh}–${bound.maxGramsPerKwh} (${bound.source})`,
      { gramsPerKwh: point.gramsPerKwh, bound },
    );
  }
}

function checkZone(point: IntensityPoint, askedZone: string): void {
  if (point.zone !== askedZone) {
    throw rejection('zone-mismatch', point.provider, `asked for ${askedZone}, answered for ${point.zone}`);
  }
}

function checkTime(atIso: string, provider: string, what: string, options: CheckOptions): number {
  const atMs = Date.parse(atIso);
  const aheadMinutes = (atMs - options.nowMs) / MS_PER_MINUTE;
  if (aheadMinutes > options.clockSkewMinutes) {
    throw rejection(
      'from-the-future',
      provider,
      `${what} is dated ${atIso}, ${Math.round(aheadMinutes)} min ahead of now (allowance ${options.clockSkewMinutes} min)`,
    );
  }
  const ageMinutes = Math.max(0, -aheadMinutes);
  if (ageMinutes > options.liveMaxAgeMinutes) {
    throw rejection(
      'stale',
      provider,
      `${what} is dated ${atIso}, ${Math.round(ageMinutes)} min old (live limit ${options.liveMaxAgeMinutes} min)`,
    );
  }
  return ageMinutes;
}

/** A live reading: plausible, for the zone asked, neither from the future nor too old. Returns its age. */
export function checkReading(point: IntensityPoint, askedZone: string, options: CheckOptions): number {
  checkZone(point, askedZone);
  checkValue(point, askedZone);
  return checkTime(point.startsAt, point.provider, `reading for ${askedZone}`, options);
}

/** History: every point checked for zone and value; points from the future are refused outright. */
export function checkHistory(
  points: readonly IntensityPoint[],
  askedZone: string,
  options: Pick<CheckOptions, 'nowMs' | 'clockSkewMinutes'>,
): IntensityPoint[] {
  for (const point of points) {
    checkZone(point, askedZone);
    checkValue(point, askedZone);
    const aheadMinutes = (Date.parse(point.startsAt) - options.nowMs) / MS_PER_MINUTE;
    if (aheadMinutes > options.clockSkewMinutes)
      throw rejection(
        'from-the-future',
        point.provider,
        `history point for ${askedZone} dated ${point.startsAt}`,
      );
  }
  return dedupeSorted(points).points;
}

export interface ForecastRepair {
  readonly duplicatesRemoved: number;
  /** Slots filled by interpolation, ISO starts. */
  readonly filled: readonly string[];
  /** A gap too long to fill: the forecast was cut at its start. */
  readonly truncatedAt: string | null;
}

export interface CheckedForecast {
  readonly forecast: Forecast;
  readonly repair: ForecastRepair;
  readonly ageMinutes: number;
}

function dedupeSorted(points: readonly IntensityPoint[]): { points: IntensityPoint[]; removed: number } {
  const sorted = [...points].sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
  const out: IntensityPoint[] = [];
  for (const p of sorted) {
    // Same slot twice (a provider bug seen in the wild): the first one stays, the rest are noise.
    if (out.length > 0 && out[out.length - 1].startsAt === p.startsAt) continue;
    out.push(p);
  }
  return { points: out, removed: sorted.length - out.length };
}

/** The step most points use; odd-length points (a provider's last partial slot) don't set it. */
function commonStepMinutes(points: readonly IntensityPoint[]): number {
  const counts = new Map<number, number>();
  for (const p of points) counts.set(p.durationMinutes, (counts.get(p.durationMinutes) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0];
}

/**
 * A forecast as the window search may use it, or a rejection. Short gaps are filled rather than
 * ending the horizon: a forecast cut at a missing hour 2 h ahead makes best-window pick the best of
 * those 2 h (start now at 200 g) instead of the 150 g window the rest of the forecast shows.
 */
export function checkForecast(forecast: Forecast, askedZone: string, options: CheckOptions): CheckedForecast {
  const provider = forecast.points[0]?.provider ?? 'forecast';
  if (forecast.zone !== askedZone)
    throw rejection(
      'zone-mismatch',
      provider,
      `forecast asked for ${askedZone}, answered for ${forecast.zone}`,
    );
  const ageMinutes = checkTime(forecast.generatedAt, provider, `forecast for ${askedZone} issued`, options);
  if (forecast.points.length === 0)
    throw rejection('empty', provider, `forecast for ${askedZone} has no points`);
  for (const point of forecast.points) {
    checkZone(point, askedZone);
    checkValue(point, askedZone);
  }
  const { points: unique, removed } = dedupeSorted(forecast.points);
  const stepMinutes = commonStepMinutes(unique);
  const stepMs = stepMinutes * MS_PER_MINUTE;
  const points: IntensityPoint[] = [unique[0]];
  const filled: string[] = [];
  let truncatedAt: string | null = null;
  for (let i = 1; i < unique.length; i++) {
    const previous = points[points.length - 1];
    const next = unique[i];
    const previousMs = Date.parse(previous.startsAt);
    const nextMs = Date.parse(next.startsAt);
    const missing = Math.round((nextMs - previousMs) / stepMs) - 1;
    if (previous.durationMinutes === stepMinutes && missing > 0 && (nextMs - previousMs) % stepMs === 0) {
      if (missing * stepMinutes > options.maxGapMinutes) {
        truncatedAt = new Date(previousMs + stepMs).toISOString();
        break;
      }
      for (let k = 1; k <= missing; k++) {
        const fraction = k / (missing + 1);
        const startsAt = new Date(previousMs + k * stepMs).toISOString();
        filled.push(startsAt);
        points.push({
          ...previous,
          startsAt,
          durationMinutes: stepMinutes,
          gramsPerKwh: previous.gramsPerKwh + fraction * (next.gramsPerKwh - previous.gramsPerKwh),
          source: 'interpolated',
        });
      }
    }
    points.push(next);
  }
  const last = points[points.length - 1];
  const firstMs = Date.parse(points[0].startsAt);
  const endMs = Date.parse(last.startsAt) + last.durationMinutes * MS_PER_MINUTE;
  // A forecast may start at the next slot boundary; beyond one slot (or an hour) it skips now.
  const firstAllowedMs = options.nowMs + Math.max(stepMs, 60 * MS_PER_MINUTE);
  if (endMs <= options.nowMs || firstMs > firstAllowedMs) {
    throw rejection(
      'forecast-not-current',
      provider,
      `forecast for ${askedZone} covers ${points[0].startsAt} – ${new Date(endMs).toISOString()}, not now (${new Date(options.nowMs).toISOString()})`,
    );
  }
  return {
    forecast: { ...forecast, points },
    repair: { duplicatesRemoved: removed, filled, truncatedAt },
    ageMinutes,
  };
}

/** One line for logs: what was repaired in a forecast, or null when nothing was. */
export function describeRepair(zone: string, repair: ForecastRepair): string | null {
  const parts: string[] = [];
  if (repair.duplicatesRemoved > 0) parts.push(`${repair.duplicatesRemoved} duplicate slot(s) removed`);
  if (repair.filled.length > 0)
    parts.push(`${repair.filled.length} missing slot(s) interpolated (${repair.filled.join(', ')})`);
  if (repair.truncatedAt) parts.push(`gap too long to fill: forecast ends at ${repair.truncatedAt}`);
  return parts.length > 0 ? `forecast for ${zone}: ${parts.join('; ')}` : null;
}
