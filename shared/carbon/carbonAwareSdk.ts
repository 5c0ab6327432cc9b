import { z } from 'zod';
import { type AzureRegionInfo, findAzureRegion } from './azureRegions';
import { dedupeByStart } from './electricityMaps';
import { type HttpTuning, JsonHttpClient } from './http';
import { rejection } from './plausibility';
import { type CarbonProvider, checkHorizon, parseRange, requireUsable, toPoints } from './provider';
import type { Forecast, IntensityPoint, SignalType } from './types';

/**
 * GSF Carbon Aware SDK Web API (one you run yourself). Locations are Azure region names; several are
 * sent as repeated `location=` parameters (the DTO binds that name — `locations=` is silently ignored).
 *
 * What the SDK's data sources do to its answers (carbon-aware-sdk @ e6de58d,
 * src/CarbonAware.DataSources/…/WattTimeDataSource.cs and ElectricityMapsDataSource.cs):
 * - Behind WattTime every point's `location` is WattTime's balancing authority (`CAISO_NORTH`), not
 *   the Azure region asked, and the values are marginal rates (MOER converted to g/kWh). Behind
 *   Electricity Maps (or the JSON source) `location` is the name asked and the values are averages.
 *   So an answer whose location differs from the one asked is mapped back to it and labelled
 *   `marginal`; where the location is echoed the SDK cannot tell, and the configured signal applies.
 * - A single WattTime point gets duration `00:00:00` (the SDK derives durations from the spacing of
 *   two points). A zero-length point says nothing about any interval: it is dropped with a warning
 *   instead of rejecting the whole response.
 */
export interface CarbonAwareSdkOptions {
  readonly baseUrl: string;
  readonly http: HttpTuning;
  /** The signal when the SDK's answer cannot tell (`average` behind Electricity Maps). */
  readonly signal?: SignalType;
  /** Data dropped rather than refused (zero-length points). */
  readonly onWarning?: (message: string) => void;
}

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 date');
/** .NET TimeSpan as JSON: `hh:mm:ss` or `d.hh:mm:ss`. */
const TIME_SPAN_PATTERN = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?$/;
const TIME_SPAN = z
  .string()
  .regex(TIME_SPAN_PATTERN, 'not a TimeSpan (hh:mm:ss)')
  .transform((s) => {
    const [, days, hours, minutes, seconds] = TIME_SPAN_PATTERN.exec(s) ?? [];
    return Number(days ?? 0) * 1440 + Number(hours) * 60 + Number(minutes) + Number(seconds) / 60;
  });
const EMISSIONS = z.array(
  z.object({
    location: z.string(),
    time: isoDate,
    rating: z.number().nullable(),
    // The Web API docs' own samples omit it; an unknown length is treated like a zero one.
    duration: TIME_SPAN.optional(),
  }),
);
const FORECASTS = z
  .array(
    z.object({
      generatedAt: isoDate,
      location: z.string(),
      forecastData: z.array(
        z.object({
          location: z.string(),
          timestamp: isoDate,
          duration: z.number().nonnegative(),
          value: z.number().nullable(),
        }),
      ),
    }),
  )
  .min(1, 'no forecast returned');

export class CarbonAwareSdkProvider implements CarbonProvider {
  readonly name = 'carbonawaresdk';
  readonly signal: SignalType;
  private readonly client: JsonHttpClient;
  private readonly now: () => number;

  constructor(private readonly options: CarbonAwareSdkOptions) {
    this.signal = options.signal ?? 'average';
    this.client = new JsonHttpClient({ ...options.http, provider: this.name, baseUrl: options.baseUrl });
    this.now = options.http.now ?? Date.now;
  }

  zoneForRegion(region: AzureRegionInfo): string {
    return region.region;
  }

  async latest(zone: string): Promise<IntensityPoint> {
    const latest = await this.latestMany([zone]);
    const point = latest.get(zone);
    return requireUsable(point ? [point] : [], this.name, `latest intensity for ${zone}`);
  }

  /** Latest usable point per location, one request for all of them. Locations without data are absent. */
  async latestMany(locations: readonly string[]): Promise<Map<string, IntensityPoint>> {
    const toMs = this.now();
    const points = await this.emissionsMapped(locations, toMs - 2 * 3_600_000, toMs);
    const latest = new Map<string, IntensityPoint>();
    for (const p of points) latest.set(p.zone, p); // sorted by time, so the last write wins
    return latest;
  }

  async history(zone: string, fromIso: string, toIso: string): Promise<IntensityPoint[]> {
    const { fromMs, toMs } = parseRange(fromIso, toIso);
    return this.emissionsMapped([zone], fromMs, toMs);
  }

  async forecast(zone: string, horizonHours: number): Promise<Forecast> {
    checkHorizon(horizonHours);
    const body = await this.client.getJson({
      path: '/emissions/forecasts/current',
      query: { location: [zone] },
      schema: FORECASTS,
      what: `Carbon Aware SDK forecast for ${zone}`,
    });
    // The outer `location` echoes the one asked whatever the source; only the points carry upstream names.
    const entry = body.find((f) => f.location === zone);
    if (!entry) {
      throw rejection(
        'zone-mismatch',
        this.name,
        `forecast asked for ${zone}, answered for ${body.map((f) => f.location).join(', ')}`,
      );
    }
    this.refuseOtherRegions(
      entry.forecastData.map((p) => p.location),
      new Set([zone]),
    );
    const endMs = this.now() + horizonHours * 3_600_000;
    const kept = this.dropZeroLength(
      entry.forecastData.map((p) => ({ ...p, minutes: p.duration, at: p.timestamp })),
      zone,
    );
    const points = toPoints(
      kept.map((p) => ({
        startsAtMs: Date.parse(p.timestamp),
        durationMinutes: p.duration,
        gramsPerKwh: p.value,
      })),
      {
        zone,
        signal: this.signalOf(
          entry.forecastData.map((p) => p.location),
          [zone],
        ),
        provider: this.name,
        source: 'forecast',
      },
    ).filter((p) => Date.parse(p.startsAt) < endMs);
    requireUsable(points, this.name, `forecast for ${zone}`);
    return {
      zone,
      generatedAt: new Date(Date.parse(entry.generatedAt)).toISOString(),
      points,
      quality: 'provider',
    };
  }

  /**
   * Emissions with every point labelled with the location asked. When the SDK renames locations
   * (WattTime behind it) and several were asked in one request, rows cannot be told apart: each
   * location is then asked on its own.
   */
  private async emissionsMapped(
    locations: readonly string[],
    fromMs: number,
    toMs: number,
  ): Promise<IntensityPoint[]> {
    const rows = await this.emissionRows(locations, fromMs, toMs);
    const asked = new Set(locations);
    this.refuseOtherRegions(
      rows.map((row) => row.location),
      asked,
    );
    if (rows.every((row) => asked.has(row.location)))
      return this.toEmissionPoints(rows, locations, (row) => row.location);
    if (locations.length === 1) return this.toEmissionPoints(rows, locations, () => locations[0]);
    const perLocation = await Promise.all(
      locations.map((location) => this.emissionsMapped([location], fromMs, toMs)),
    );
    return perLocation.flat().sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
  }

  private toEmissionPoints(
    rows: z.output<typeof EMISSIONS>,
    asked: readonly string[],
    locationOf: (row: z.output<typeof EMISSIONS>[number]) => string,
  ): IntensityPoint[] {
    const signal = this.signalOf(
      rows.map((row) => row.location),
      asked,
    );
    const kept = this.dropZeroLength(
      rows.map((row) => ({ ...row, minutes: row.duration ?? 0, at: row.time })),
      asked.join(', '),
    );
    const byLocation = new Map<string, IntensityPoint[]>();
    for (const row of kept) {
      const location = locationOf(row);
      const points = toPoints(
        [{ startsAtMs: Date.parse(row.time), durationMinutes: row.minutes, gramsPerKwh: row.rating }],
        { zone: location, signal, provider: this.name, source: 'measured' },
      );
      byLocation.set(location, [...(byLocation.get(location) ?? []), ...points]);
    }
    return [...byLocation.values()]
      .flatMap((points) => dedupeByStart(points))
      .sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
  }

  /**
   * A renamed location is the upstream provider's own name (WattTime's `CAISO_NORTH`); the name of
   * another Azure region is no rename but an answer for somewhere else.
   */
  private refuseOtherRegions(answered: readonly string[], asked: ReadonlySet<string>): void {
    const other = answered.find((location) => !asked.has(location) && findAzureRegion(location));
    if (other) {
      throw rejection(
        'zone-mismatch',
        this.name,
        `asked for ${[...asked].join(', ')}, answered for Azure region ${other}`,
      );
    }
  }

  /** Renamed locations mean WattTime is behind the SDK: marginal. Otherwise the configured signal. */
  private signalOf(answered: readonly string[], asked: readonly string[]): SignalType {
    const askedSet = new Set(asked);
    return answered.some((location) => !askedSet.has(location)) ? 'marginal' : this.signal;
  }

  private dropZeroLength<T extends { minutes: number; at: string }>(rows: readonly T[], what: string): T[] {
    const kept = rows.filter((row) => row.minutes > 0);
    const dropped = rows.filter((row) => !(row.minutes > 0));
    if (dropped.length > 0) {
      this.options.onWarning?.(
        `${this.name}: dropped ${dropped.length} zero-length point(s) for ${what} (${dropped.map((r) => r.at).join(', ')}); the SDK gives a single upstream point no duration`,
      );
    }
    return kept;
  }

  private async emissionRows(
    locations: readonly string[],
    fromMs: number,
    toMs: number,
  ): Promise<z.output<typeof EMISSIONS>> {
    return this.client.getJson({
      path: '/emissions/bylocations',
      query: {
        location: locations,
        time: new Date(fromMs).toISOString(),
        toTime: new Date(toMs).toISOString(),
      },
      schema: EMISSIONS,
      what: `Carbon Aware SDK emissions for ${locations.join(', ')}`,
    });
  }
}
