import { NotFoundError, ProviderError, ValidationError } from '../errors';
import { type AzureRegionInfo, findAzureRegion } from './azureRegions';
import type { Forecast, IntensityPoint, PointSource, SignalType } from './types';

/**
 * One interface for every intensity source (live APIs, bundled traces, fallbacks). Zones are the
 * provider's own keys; `zoneForRegion` says which key an Azure region maps to for this provider
 * (Electricity Maps zone, UK region id, SDK location name, trace zone).
 */
export interface CarbonProvider {
  readonly name: string;
  readonly signal: SignalType;
  latest(zone: string): Promise<IntensityPoint>;
  history(zone: string, fromIso: string, toIso: string): Promise<IntensityPoint[]>;
  forecast(zone: string, horizonHours: number): Promise<Forecast>;
  /** The key this provider uses for an Azure region; defaults to the Electricity Maps zone. */
  zoneForRegion?(region: AzureRegionInfo): string;
}

/**
 * Providers report 0.0 (or worse) during outages and gaps; treating that as "perfectly clean" would
 * send every job to the broken zone, so anything not strictly positive and finite is missing.
 */
export function isUsableIntensity(gramsPerKwh: number | null | undefined): gramsPerKwh is number {
  return typeof gramsPerKwh === 'number' && Number.isFinite(gramsPerKwh) && gramsPerKwh > 0;
}

export interface PointInput {
  readonly startsAtMs: number;
  readonly durationMinutes: number;
  readonly gramsPerKwh: number | null | undefined;
}

/** Builds points, dropping unusable values; the caller decides whether an empty result is an error. */
export function toPoints(
  inputs: readonly PointInput[],
  meta: { zone: string; signal: SignalType; provider: string; source: PointSource },
): IntensityPoint[] {
  const points: IntensityPoint[] = [];
  for (const input of inputs) {
    if (!isUsableIntensity(input.gramsPerKwh) || !Number.isFinite(input.startsAtMs)) continue;
    points.push({
      startsAt: new Date(input.startsAtMs).toISOString(),
      durationMinutes: input.durationMinutes,
      gramsPerKwh: input.gramsPerKwh,
      ...meta,
    });
  }
  return points.sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
}

/** The one point a `latest` call needs, or NO_DATA when the provider only had unusable values. */
export function requireUsable(
  points: readonly IntensityPoint[],
  provider: string,
  what: string,
): IntensityPoint {
  const last = points[points.length - 1];
  if (!last) {
    throw new ProviderError(
      'NO_DATA',
      `${provider}: ${what} has no usable intensity (missing, zero or negative)`,
      provider,
    );
  }
  return last;
}

export function resolveRegion(region: string): AzureRegionInfo {
  const info = findAzureRegion(region);
  if (!info) throw new NotFoundError(`Unknown Azure region ${region} (see shared/carbon/azureRegions.ts)`);
  return info;
}

export function zoneForRegion(provider: CarbonProvider, region: string): string {
  const info = resolveRegion(region);
  return provider.zoneForRegion ? provider.zoneForRegion(info) : info.zone;
}

export async function latestForRegion(provider: CarbonProvider, region: string): Promise<IntensityPoint> {
  return provider.latest(zoneForRegion(provider, region));
}

export async function forecastForRegion(
  provider: CarbonProvider,
  region: string,
  horizonHours: number,
): Promise<Forecast> {
  const info = resolveRegion(region);
  const forecast = await provider.forecast(zoneForRegion(provider, region), horizonHours);
  return { ...forecast, region: info.region };
}

export async function historyForRegion(
  provider: CarbonProvider,
  region: string,
  fromIso: string,
  toIso: string,
): Promise<IntensityPoint[]> {
  return provider.history(zoneForRegion(provider, region), fromIso, toIso);
}

/** Validates an ISO range argument once, for every provider's `history`. */
export function parseRange(fromIso: string, toIso: string): { fromMs: number; toMs: number } {
  const fromMs = Date.parse(fromIso);
  const toMs = Date.parse(toIso);
  if (Number.isNaN(fromMs) || Number.isNaN(toMs) || toMs <= fromMs) {
    throw new ValidationError(`History range ${fromIso} – ${toIso} is not an ISO-8601 range with from < to`, [
      { path: 'fromIso/toIso', message: 'expected ISO-8601 timestamps with from < to' },
    ]);
  }
  return { fromMs, toMs };
}

export const MAX_HORIZON_HOURS = 72;

/** Every provider caps forecasts at 72 h (EM, WattTime); reject nonsense before any request. */
export function checkHorizon(horizonHours: number): number {
  if (!Number.isInteger(horizonHours) || horizonHours < 1 || horizonHours > MAX_HORIZON_HOURS) {
    throw new ValidationError(`Forecast horizon must be a whole number of hours in 1..${MAX_HORIZON_HOURS}`, [
      { path: 'horizonHours', message: `got ${horizonHours}` },
    ]);
  }
  return horizonHours;
}
