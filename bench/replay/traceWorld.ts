import { AZURE_REGIONS, findAzureRegion, type ResidencyRule } from '../../shared/carbon/azureRegions';
import { availableTraceZones, loadTraceSeries } from '../../shared/carbon/traceData';
import { TraceProvider } from '../../shared/carbon/traceProvider';
import { NotFoundError } from '../../shared/errors';
import { seriesFromForecast, sliceSeries, type IntensitySeries } from '../../shared/policy/intensitySeries';
import type { PolicyKnowledge } from '../../shared/policy/schedulingPolicies';

/**
 * Every bundled zone and every year it has, each mapped to a home Azure region. Spatial shifting
 * may use the home regions of the zones in the same residency group that have the same year:
 * Europe (EU, EEA and UK regions: residency EUROPE) or the US (residency US).
 */
export interface ZoneYear {
  readonly zone: string;
  readonly year: number;
  readonly homeRegion: string;
  /** Regions `green-spatial` and the oracle may use, home region first. */
  readonly regions: readonly string[];
  readonly residency: ResidencyRule;
}

function homeRegionOf(zone: string): string {
  const info = AZURE_REGIONS.find((r) => r.traceZone === zone);
  if (!info) throw new NotFoundError(`No Azure region replays trace zone ${zone}`);
  return info.region;
}

const residencyOf = (region: string): ResidencyRule =>
  findAzureRegion(region)?.jurisdiction === 'US' ? 'US' : 'EUROPE';

export const zoneYearLabel = (z: Pick<ZoneYear, 'zone' | 'year'>): string => `${z.zone} ${z.year}`;

export function allZoneYears(): ZoneYear[] {
  const zones = availableTraceZones().map((zone) => {
    const homeRegion = homeRegionOf(zone);
    return { zone, homeRegion, residency: residencyOf(homeRegion), years: loadTraceSeries(zone).years };
  });
  const out: ZoneYear[] = [];
  for (const z of zones) {
    for (const year of z.years) {
      // A year counts only when the trace covers all of it (a partial first/last year would end early).
      if (!coversYear(z.zone, year)) continue;
      const peers = zones
        .filter((p) => p.residency === z.residency && p.zone !== z.zone && coversYear(p.zone, year))
        .map((p) => p.homeRegion);
      out.push({
        zone: z.zone,
        year,
        homeRegion: z.homeRegion,
        regions: [z.homeRegion, ...peers],
        residency: z.residency,
      });
    }
  }
  return out;
}

function coversYear(zone: string, year: number): boolean {
  const s = loadTraceSeries(zone);
  const endMs = s.firstStartMs + s.gramsPerKwh.length * s.stepMinutes * 60_000;
  return s.firstStartMs <= Date.UTC(year, 0, 1) && endMs >= Date.UTC(year + 1, 0, 1);
}

function traceZoneOfRegion(region: string): string {
  const zone = findAzureRegion(region)?.traceZone;
  if (!zone) throw new NotFoundError(`Region ${region} has no bundled trace`);
  return zone;
}

/**
 * What policies may know in one zone-year: the real trace (`actual`) and REALISTIC forecasts from the
 * shared TraceProvider (seeded error growing with lead time), fetched ahead of each plan because the
 * provider is async and `PolicyKnowledge` is not. `green*` plan on these forecasts, never the future.
 */
export class TraceKnowledge implements PolicyKnowledge {
  private readonly actuals = new Map<string, IntensitySeries>();
  private readonly forecasts = new Map<string, IntensitySeries | null>();
  private nowMs = 0;
  private readonly provider: TraceProvider;

  constructor(year: number, seed: number) {
    this.provider = new TraceProvider({
      year,
      seed,
      forecastMode: 'realistic',
      now: () => new Date(this.nowMs),
    });
  }

  private static key(region: string, issuedAtMs: number, horizonHours: number): string {
    return `${region}|${issuedAtMs}|${horizonHours}`;
  }

  async prefetch(regions: readonly string[], issuedAtMs: number, horizonHours: number): Promise<void> {
    this.forecasts.clear();
    for (const region of regions) {
      this.nowMs = issuedAtMs;
      const forecast = await this.provider.forecast(traceZoneOfRegion(region), horizonHours);
      this.forecasts.set(TraceKnowledge.key(region, issuedAtMs, horizonHours), seriesFromForecast(forecast));
    }
  }

  forecast(region: string, issuedAtMs: number, horizonHours: number): IntensitySeries | null {
    return this.forecasts.get(TraceKnowledge.key(region, issuedAtMs, horizonHours)) ?? null;
  }

  actual(region: string): IntensitySeries | null {
    let series = this.actuals.get(region);
    if (!series) {
      const zone = findAzureRegion(region)?.traceZone;
      if (!zone) return null;
      series = { ...loadTraceSeries(zone), quality: 'actual' };
      this.actuals.set(region, series);
    }
    return series;
  }
}

/**
 * The same zone-year with PERFECT forecasts: a forecast issued at t for h hours is the real trace
 * over [t, t + h]. A policy planning on this is the fair oracle of that policy: it knows the future
 * exactly as far as a forecast reaches, and no further, in the regions the policy may use.
 */
export class PerfectForecastKnowledge implements PolicyKnowledge {
  constructor(private readonly world: TraceKnowledge) {}

  forecast(region: string, issuedAtMs: number, horizonHours: number): IntensitySeries | null {
    const actual = this.world.actual(region);
    return actual ? sliceSeries(actual, issuedAtMs, issuedAtMs + horizonHours * 3_600_000, 'perfect') : null;
  }

  actual(region: string): IntensitySeries | null {
    return this.world.actual(region);
  }
}
