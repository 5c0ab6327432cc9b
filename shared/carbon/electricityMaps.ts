import { z } from 'zod';
import { type CarbonProvider, checkHorizon, parseRange, requireUsable, toPoints } from './provider';
import { type HttpTuning, JsonHttpClient } from './http';
import type { Forecast, IntensityPoint } from './types';

/**
 * Electricity Maps API v3 (`auth-token` header). Values are average, lifecycle, consumption-based
 * gCO2eq/kWh — the same basis as the bundled traces. Timestamps are hour starts.
 */
export interface ElectricityMapsOptions {
  readonly baseUrl: string;
  readonly token: string;
  readonly http: HttpTuning;
}

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 date');
const EM_POINT = z.object({
  zone: z.string().optional(),
  carbonIntensity: z.number().nullable(),
  datetime: isoDate,
  updatedAt: isoDate.optional(),
  isEstimated: z.boolean().nullable().optional(),
});
const LATEST = EM_POINT.extend({ zone: z.string() });
const HISTORY = z.object({ zone: z.string(), history: z.array(EM_POINT) });
const PAST_RANGE = z.object({ zone: z.string(), data: z.array(EM_POINT) });
const FORECAST = z.object({
  zone: z.string(),
  forecast: z.array(z.object({ carbonIntensity: z.number().nullable(), datetime: isoDate })),
  updatedAt: isoDate.optional(),
});

/** EM only serves these forecast horizons; ask for the next one up and trim. */
const EM_HORIZONS = [6, 24, 48, 72] as const;
const HOUR_MS = 3_600_000;
/** `/past-range` rejects long ranges; ten days of hourly data per call stays inside the limit. */
const PAST_RANGE_CHUNK_MS = 240 * HOUR_MS;

export class ElectricityMapsProvider implements CarbonProvider {
  readonly name = 'electricitymaps';
  readonly signal = 'average' as const;
  private readonly client: JsonHttpClient;
  private readonly now: () => number;

  constructor(private readonly options: ElectricityMapsOptions) {
    this.client = new JsonHttpClient({
      ...options.http,
      provider: this.name,
      baseUrl: options.baseUrl,
      secrets: () => [options.token],
    });
    this.now = options.http.now ?? Date.now;
  }

  private get headers(): Record<string, string> {
    return { 'auth-token': this.options.token };
  }

  async latest(zone: string): Promise<IntensityPoint> {
    const body = await this.client.getJson({
      path: '/carbon-intensity/latest',
      query: { zone },
      headers: this.headers,
      schema: LATEST,
      what: `Electricity Maps latest intensity for ${zone}`,
    });
    // Points carry the zone the API answered for, so the chain's check sees a reply for another zone.
    return requireUsable(this.measured(body.zone, [body]), this.name, `latest intensity for ${zone}`);
  }

  /** The last 24 hours through `/history`, older ranges through `/past-range` in chunks. */
  async history(zone: string, fromIso: string, toIso: string): Promise<IntensityPoint[]> {
    const { fromMs, toMs } = parseRange(fromIso, toIso);
    const inRange = (p: IntensityPoint): boolean => {
      const atMs = Date.parse(p.startsAt);
      return atMs >= fromMs && atMs < toMs;
    };
    if (fromMs >= this.now() - 24 * HOUR_MS) {
      const body = await this.client.getJson({
        path: '/carbon-intensity/history',
        query: { zone },
        headers: this.headers,
        schema: HISTORY,
        what: `Electricity Maps 24 h history for ${zone}`,
      });
      return this.measured(body.zone, body.history).filter(inRange);
    }
    const points: IntensityPoint[] = [];
    for (let startMs = fromMs; startMs < toMs; startMs += PAST_RANGE_CHUNK_MS) {
      const endMs = Math.min(toMs, startMs + PAST_RANGE_CHUNK_MS);
      const body = await this.client.getJson({
        path: '/carbon-intensity/past-range',
        query: { zone, start: new Date(startMs).toISOString(), end: new Date(endMs).toISOString() },
        headers: this.headers,
        schema: PAST_RANGE,
        what: `Electricity Maps past range for ${zone}`,
      });
      points.push(...this.measured(body.zone, body.data));
    }
    return dedupeByStart(points.filter(inRange));
  }

  async forecast(zone: string, horizonHours: number): Promise<Forecast> {
    checkHorizon(horizonHours);
    const requested = EM_HORIZONS.find((h) => h >= horizonHours) ?? 72;
    const body = await this.client.getJson({
      path: '/carbon-intensity/forecast',
      query: { zone, horizonHours: requested },
      headers: this.headers,
      schema: FORECAST,
      what: `Electricity Maps forecast for ${zone}`,
    });
    const generatedAtMs = body.updatedAt ? Date.parse(body.updatedAt) : this.now();
    const endMs = Math.floor(this.now() / HOUR_MS) * HOUR_MS + horizonHours * HOUR_MS;
    const points = toPoints(
      body.forecast.map((p) => ({
        startsAtMs: Date.parse(p.datetime),
        durationMinutes: 60,
        gramsPerKwh: p.carbonIntensity,
      })),
      { zone: body.zone, signal: this.signal, provider: this.name, source: 'forecast' },
    ).filter((p) => Date.parse(p.startsAt) < endMs);
    requireUsable(points, this.name, `forecast for ${zone}`);
    return {
      zone: body.zone,
      generatedAt: new Date(generatedAtMs).toISOString(),
      points,
      quality: 'provider',
    };
  }

  private measured(zone: string, raw: readonly z.output<typeof EM_POINT>[]): IntensityPoint[] {
    return toPoints(
      raw.map((p) => ({
        startsAtMs: Date.parse(p.datetime),
        durationMinutes: 60,
        gramsPerKwh: p.carbonIntensity,
      })),
      { zone, signal: this.signal, provider: this.name, source: 'measured' },
    );
  }
}

export function dedupeByStart(points: readonly IntensityPoint[]): IntensityPoint[] {
  const byStart = new Map<string, IntensityPoint>();
  for (const p of points) byStart.set(p.startsAt, p);
  return [...byStart.values()].sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
}
