import { z } from 'zod';
import type { AzureRegionInfo } from './azureRegions';
import { dedupeByStart } from './electricityMaps';
import { type HttpTuning, JsonHttpClient } from './http';
import { type CarbonProvider, checkHorizon, parseRange, requireUsable, toPoints } from './provider';
import type { Forecast, IntensityPoint, SignalType } from './types';

/**
 * GSF Carbon Aware SDK Web API (one you run yourself). Locations are Azure region names; several are
 * sent as repeated `location=` parameters (the DTO binds that name — `locations=` is silently ignored).
 * The SDK passes through whatever its data source serves, so the signal is configured, not assumed.
 */
export interface CarbonAwareSdkOptions {
  readonly baseUrl: string;
  readonly http: HttpTuning;
  /** `average` behind an Electricity Maps source, `marginal` behind WattTime. */
  readonly signal?: SignalType;
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
  })
  .refine((minutes) => minutes > 0, 'duration must be positive');
const EMISSIONS = z.array(
  z.object({ location: z.string(), time: isoDate, rating: z.number().nullable(), duration: TIME_SPAN }),
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
          duration: z.number().positive(),
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

  constructor(options: CarbonAwareSdkOptions) {
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
    const points = await this.emissions(locations, toMs - 2 * 3_600_000, toMs);
    const latest = new Map<string, IntensityPoint>();
    for (const p of points) latest.set(p.zone, p); // sorted by time, so the last write wins
    return latest;
  }

  async history(zone: string, fromIso: string, toIso: string): Promise<IntensityPoint[]> {
    const { fromMs, toMs } = parseRange(fromIso, toIso);
    return this.emissions([zone], fromMs, toMs);
  }

  async forecast(zone: string, horizonHours: number): Promise<Forecast> {
    checkHorizon(horizonHours);
    const body = await this.client.getJson({
      path: '/emissions/forecasts/current',
      query: { location: [zone] },
      schema: FORECASTS,
      what: `Carbon Aware SDK forecast for ${zone}`,
    });
    const entry = body.find((f) => f.location === zone) ?? body[0];
    const endMs = this.now() + horizonHours * 3_600_000;
    const points = toPoints(
      entry.forecastData.map((p) => ({
        startsAtMs: Date.parse(p.timestamp),
        durationMinutes: p.duration,
        gramsPerKwh: p.value,
      })),
      { zone, signal: this.signal, provider: this.name, source: 'forecast' },
    ).filter((p) => Date.parse(p.startsAt) < endMs);
    requireUsable(points, this.name, `forecast for ${zone}`);
    return {
      zone,
      generatedAt: new Date(Date.parse(entry.generatedAt)).toISOString(),
      points,
      quality: 'provider',
    };
  }

  private async emissions(
    locations: readonly string[],
    fromMs: number,
    toMs: number,
  ): Promise<IntensityPoint[]> {
    const body = await this.client.getJson({
      path: '/emissions/bylocations',
      query: {
        location: locations,
        time: new Date(fromMs).toISOString(),
        toTime: new Date(toMs).toISOString(),
      },
      schema: EMISSIONS,
      what: `Carbon Aware SDK emissions for ${locations.join(', ')}`,
    });
    const byLocation = new Map<string, IntensityPoint[]>();
    for (const row of body) {
      const points = toPoints(
        [{ startsAtMs: Date.parse(row.time), durationMinutes: row.duration, gramsPerKwh: row.rating }],
        { zone: row.location, signal: this.signal, provider: this.name, source: 'measured' },
      );
      byLocation.set(row.location, [...(byLocation.get(row.location) ?? []), ...points]);
    }
    return [...byLocation.values()]
      .flatMap((points) => dedupeByStart(points))
      .sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
  }
}
