import { z } from 'zod';
import { ValidationError } from '../errors';
import type { AzureRegionInfo } from './azureRegions';
import { dedupeByStart } from './electricityMaps';
import { type HttpTuning, JsonHttpClient } from './http';
import { type CarbonProvider, checkHorizon, parseRange, requireUsable, toPoints } from './provider';
import type { Forecast, IntensityPoint, PointSource } from './types';

/**
 * UK Carbon Intensity API (NESO). No auth; half-hour slots; average **direct** (operational) gCO2/kWh,
 * so its numbers are lower than Electricity Maps' lifecycle GB values and must not be mixed with them.
 * Zone `GB` (or `national`) is the national series; `1`..`18` are NESO region ids, which only have
 * forecasts (the API publishes no regional actuals), so those points are labelled `forecast`.
 */
export interface UkCarbonIntensityOptions {
  readonly baseUrl: string;
  readonly http: HttpTuning;
}

const SLOT_MS = 30 * 60_000;
/** The API rejects `/{from}/{to}` ranges longer than 14 days. */
const RANGE_CHUNK_MS = 14 * 24 * 3_600_000;
const FORECAST_LIMIT_HOURS = 48;

const ukTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 time');
const NATIONAL_SLOT = z.object({
  from: ukTime,
  to: ukTime,
  intensity: z.object({ forecast: z.number().nullable(), actual: z.number().nullable().optional() }),
});
const NATIONAL = z.object({ data: z.array(NATIONAL_SLOT) });
const REGIONAL_SLOT = z.object({
  from: ukTime,
  to: ukTime,
  intensity: z.object({ forecast: z.number().nullable() }),
});
const REGION_SERIES = z.object({ regionid: z.number().int(), data: z.array(REGIONAL_SLOT) });
/** `/regional/regionid/{id}` wraps its region in an array, the `/regional/intensity/...` routes don't. */
const REGIONAL = z.object({
  data: z
    .union([REGION_SERIES, z.array(REGION_SERIES).length(1)])
    .transform((d) => (Array.isArray(d) ? d[0] : d)),
});

type Target = { readonly kind: 'national' } | { readonly kind: 'region'; readonly regionId: number };

export class UkCarbonIntensityProvider implements CarbonProvider {
  readonly name = 'ukcarbonintensity';
  readonly signal = 'average' as const;
  private readonly client: JsonHttpClient;
  private readonly now: () => number;

  constructor(options: UkCarbonIntensityOptions) {
    this.client = new JsonHttpClient({ ...options.http, provider: this.name, baseUrl: options.baseUrl });
    this.now = options.http.now ?? Date.now;
  }

  zoneForRegion(region: AzureRegionInfo): string {
    return region.ukRegionId === undefined ? region.zone : String(region.ukRegionId);
  }

  async latest(zone: string): Promise<IntensityPoint> {
    const target = parseTarget(zone);
    if (target.kind === 'national') {
      const body = await this.client.getJson({
        path: '/intensity',
        schema: NATIONAL,
        what: 'UK national intensity',
      });
      return requireUsable(this.national(zone, body), this.name, 'current national slot');
    }
    const body = await this.client.getJson({
      path: `/regional/regionid/${target.regionId}`,
      schema: REGIONAL,
      what: `UK regional intensity for region ${target.regionId}`,
    });
    return requireUsable(this.regional(body), this.name, `current slot of region ${target.regionId}`);
  }

  async history(zone: string, fromIso: string, toIso: string): Promise<IntensityPoint[]> {
    const target = parseTarget(zone);
    const { fromMs, toMs } = parseRange(fromIso, toIso);
    const points: IntensityPoint[] = [];
    for (let startMs = fromMs; startMs < toMs; startMs += RANGE_CHUNK_MS) {
      const range = `${ukSlot(startMs)}/${ukSlot(Math.min(toMs, startMs + RANGE_CHUNK_MS))}`;
      if (target.kind === 'national') {
        const body = await this.client.getJson({
          path: `/intensity/${range}`,
          schema: NATIONAL,
          what: 'UK national history',
        });
        points.push(...this.national(zone, body));
      } else {
        const body = await this.client.getJson({
          path: `/regional/intensity/${range}/regionid/${target.regionId}`,
          schema: REGIONAL,
          what: `UK regional history for region ${target.regionId}`,
        });
        points.push(...this.regional(body));
      }
    }
    return dedupeByStart(points).filter(
      (p) => Date.parse(p.startsAt) >= fromMs && Date.parse(p.startsAt) < toMs,
    );
  }

  /** `fw48h` from the current half hour; horizons beyond 48 h get the 48 h the API publishes. */
  async forecast(zone: string, horizonHours: number): Promise<Forecast> {
    checkHorizon(horizonHours);
    const target = parseTarget(zone);
    const fromMs = Math.floor(this.now() / SLOT_MS) * SLOT_MS;
    const endMs = fromMs + Math.min(horizonHours, FORECAST_LIMIT_HOURS) * 3_600_000;
    let points: IntensityPoint[];
    if (target.kind === 'national') {
      const body = await this.client.getJson({
        path: `/intensity/${ukSlot(fromMs)}/fw48h`,
        schema: NATIONAL,
        what: 'UK national 48 h forecast',
      });
      points = this.slots(
        zone,
        body.data.map((s) => ({ ...s, value: s.intensity.forecast })),
        'forecast',
      );
    } else {
      const body = await this.client.getJson({
        path: `/regional/intensity/${ukSlot(fromMs)}/fw48h/regionid/${target.regionId}`,
        schema: REGIONAL,
        what: `UK regional 48 h forecast for region ${target.regionId}`,
      });
      points = this.regional(body);
    }
    points = points.filter((p) => Date.parse(p.startsAt) < endMs);
    requireUsable(points, this.name, `forecast for ${zone}`);
    return { zone, generatedAt: new Date(this.now()).toISOString(), points, quality: 'provider' };
  }

  /** Actuals where published; the slot's forecast otherwise, labelled as such. */
  private national(zone: string, body: z.output<typeof NATIONAL>): IntensityPoint[] {
    const measured = body.data.filter(
      (s) => s.intensity.actual !== null && s.intensity.actual !== undefined && s.intensity.actual > 0,
    );
    const forecastOnly = body.data.filter((s) => !measured.includes(s));
    return dedupeByStart([
      ...this.slots(
        zone,
        measured.map((s) => ({ ...s, value: s.intensity.actual ?? null })),
        'measured',
      ),
      ...this.slots(
        zone,
        forecastOnly.map((s) => ({ ...s, value: s.intensity.forecast })),
        'forecast',
      ),
    ]);
  }

  private regional(body: z.output<typeof REGIONAL>): IntensityPoint[] {
    // The region id the API answered for, so a reply for another region fails the chain's zone check.
    return this.slots(
      String(body.data.regionid),
      body.data.data.map((s) => ({ ...s, value: s.intensity.forecast })),
      'forecast',
    );
  }

  private slots(
    zone: string,
    slots: readonly { from: string; to: string; value: number | null }[],
    source: PointSource,
  ): IntensityPoint[] {
    return toPoints(
      slots.map((s) => ({
        startsAtMs: Date.parse(s.from),
        durationMinutes: Math.round((Date.parse(s.to) - Date.parse(s.from)) / 60_000),
        gramsPerKwh: s.value,
      })),
      { zone, signal: this.signal, provider: this.name, source },
    );
  }
}

function parseTarget(zone: string): Target {
  if (zone === 'GB' || zone === 'national') return { kind: 'national' };
  if (/^\d{1,2}$/.test(zone)) {
    const regionId = Number(zone);
    if (regionId >= 1 && regionId <= 18) return { kind: 'region', regionId };
  }
  throw new ValidationError(
    `UK Carbon Intensity covers Great Britain only: zone must be GB, national or a NESO region id 1..18, got ${zone}`,
    [{ path: 'zone', message: `unsupported zone ${zone}` }],
  );
}

/** The API's `YYYY-MM-DDTHH:mmZ` form. */
function ukSlot(atMs: number): string {
  return `${new Date(atMs).toISOString().slice(0, 16)}Z`;
}
