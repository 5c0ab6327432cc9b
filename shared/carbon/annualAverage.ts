import { z } from 'zod';
import { ProviderError } from '../errors';
import { parseWith } from '../validation';
import { AZURE_REGIONS, type AzureRegionInfo } from './azureRegions';
import { type CarbonProvider, checkHorizon, parseRange } from './provider';
import type { Forecast, IntensityPoint } from './types';

/**
 * The last resort when live data and the cache are both unavailable: yearly averages shipped inside
 * `@tgwf/co2` (CO2.js). First the Electricity Maps yearly zone average (same lifecycle basis as the
 * live provider), then the Ember country average by ISO alpha-3 from the region table, then WORLD.
 * A flat number is far better than guessing "clean", but it carries no time signal, so every point is
 * labelled `annual-average` and schedulers can see a window chosen on it is not a real window.
 */
const EM_YEAR = z.object({
  data: z.record(z.string(), z.object({ carbonIntensity: z.object({ value: z.number() }) })),
});
const EMBER = z.object({ data: z.record(z.string(), z.number()) });

interface AverageTables {
  readonly emYearKey: string;
  readonly emZones: Readonly<Record<string, { carbonIntensity: { value: number } }>>;
  readonly emberByAlpha3: Readonly<Record<string, number>>;
}

let tables: AverageTables | undefined;

function loadTables(): AverageTables {
  if (tables) return tables;
  // CO2.js ships no type declarations; its data is validated here instead.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const emModule = require('@tgwf/co2/data/electricity-maps') as Record<string, unknown>;
  const dataModule: unknown = require('@tgwf/co2/data');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const emYearKey = Object.keys(emModule)
    .filter((k) => /^yearly\d{4}$/.test(k))
    .sort()
    .pop();
  if (!emYearKey)
    throw new ProviderError('NO_DATA', 'CO2.js ships no Electricity Maps yearly data', 'annual-average');
  const emYear = parseWith(EM_YEAR, emModule[emYearKey], `CO2.js Electricity Maps ${emYearKey}`);
  const data = parseWith(z.object({ averageIntensity: EMBER }), dataModule, 'CO2.js average intensities');
  tables = { emYearKey, emZones: emYear.data, emberByAlpha3: data.averageIntensity.data };
  return tables;
}

export interface AnnualAverage {
  readonly gramsPerKwh: number;
  /** e.g. `co2js:electricityMaps.yearly2025:NL`, `co2js:ember:IRL`, `co2js:ember:WORLD`. */
  readonly provider: string;
}

/** Which region row a zone key belongs to: EM zone, trace zone, region name or UK region id. */
function regionForZone(zone: string): AzureRegionInfo | undefined {
  return AZURE_REGIONS.find(
    (r) => r.zone === zone || r.traceZone === zone || r.region === zone || String(r.ukRegionId) === zone,
  );
}

/**
 * Annual average for a zone key. `region` overrides the lookup of the region row (its EM zone and
 * country) when the caller knows it; otherwise the row is found from the zone key.
 */
export function annualAverageFor(
  zone: string,
  region: AzureRegionInfo | undefined = regionForZone(zone),
): AnnualAverage {
  const { emYearKey, emZones, emberByAlpha3 } = loadTables();
  const candidates = [zone, region?.zone].filter((z): z is string => z !== undefined);
  for (const key of candidates) {
    const value = emZones[key]?.carbonIntensity.value;
    if (value !== undefined && value > 0) {
      return { gramsPerKwh: value, provider: `co2js:electricityMaps.${emYearKey}:${key}` };
    }
  }
  const alpha3 = region?.countryAlpha3;
  const country = alpha3 === undefined ? undefined : emberByAlpha3[alpha3];
  if (alpha3 !== undefined && country !== undefined && country > 0) {
    return { gramsPerKwh: country, provider: `co2js:ember:${alpha3}` };
  }
  const world = emberByAlpha3.WORLD;
  if (world === undefined)
    throw new ProviderError('NO_DATA', 'CO2.js has no WORLD average', 'annual-average');
  return { gramsPerKwh: world, provider: 'co2js:ember:WORLD' };
}

const HOUR_MS = 3_600_000;

/** Serves the annual average as a flat series; `now` sets which hours `latest`/`forecast` cover. */
export class AnnualAverageProvider implements CarbonProvider {
  readonly name = 'annual-average';
  readonly signal = 'average' as const;

  constructor(private readonly now: () => Date = () => new Date()) {}

  async latest(zone: string): Promise<IntensityPoint> {
    return this.point(zone, Math.floor(this.now().getTime() / HOUR_MS) * HOUR_MS);
  }

  async history(zone: string, fromIso: string, toIso: string): Promise<IntensityPoint[]> {
    const { fromMs, toMs } = parseRange(fromIso, toIso);
    const points: IntensityPoint[] = [];
    for (let atMs = Math.floor(fromMs / HOUR_MS) * HOUR_MS; atMs < toMs; atMs += HOUR_MS) {
      points.push(this.point(zone, atMs));
    }
    return points;
  }

  async forecast(zone: string, horizonHours: number): Promise<Forecast> {
    checkHorizon(horizonHours);
    const issueMs = Math.floor(this.now().getTime() / HOUR_MS) * HOUR_MS;
    const points = Array.from({ length: horizonHours }, (_, k) => this.point(zone, issueMs + k * HOUR_MS));
    return { zone, generatedAt: new Date(issueMs).toISOString(), points, quality: 'annual-average' };
  }

  private point(zone: string, atMs: number): IntensityPoint {
    const average = annualAverageFor(zone);
    return {
      startsAt: new Date(atMs).toISOString(),
      durationMinutes: 60,
      gramsPerKwh: average.gramsPerKwh,
      zone,
      signal: this.signal,
      provider: average.provider,
      source: 'annual-average',
    };
  }
}
