import { z } from 'zod';
import { ProviderError, isGreenMlError } from '../errors';
import type { AzureRegionInfo } from './azureRegions';
import { dedupeByStart } from './electricityMaps';
import { type HttpTuning, JsonHttpClient } from './http';
import { type CarbonProvider, checkHorizon, parseRange, requireUsable, toPoints } from './provider';
import type { Forecast, IntensityPoint } from './types';

/**
 * WattTime API v3. Values are marginal operating emission rates (`co2_moer`) in lbs/MWh, converted to
 * g/kWh (1 lb/MWh = 0.45359237 g/kWh) and labelled `marginal` so nobody ranks them against averages.
 * A login (Basic auth) yields a bearer token valid ~30 min: it is cached, renewed before it expires,
 * and renewed once more if a call is refused with 401 anyway (clock skew, server-side revocation).
 */
export const LBS_PER_MWH_TO_GRAMS_PER_KWH = 0.45359237;
const TOKEN_LIFETIME_MS = 30 * 60_000;
/** Renew a little early so a token never expires between check and use. */
const TOKEN_RENEW_MARGIN_MS = 60_000;
const HISTORY_CHUNK_MS = 30 * 24 * 3_600_000;

export interface WattTimeOptions {
  readonly baseUrl: string;
  readonly username: string;
  readonly password: string;
  readonly http: HttpTuning;
  /** Azure region -> WattTime balancing-authority region; free accounts only get CAISO_NORTH data. */
  readonly regionMap?: Readonly<Record<string, string>>;
}

const DEFAULT_REGION_MAP: Readonly<Record<string, string>> = { westus: 'CAISO_NORTH' };

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 date');
const LOGIN = z.object({ token: z.string().min(1) });
const DATA_POINT = z.object({ point_time: isoDate, value: z.number().nullable() });
const META = z.object({
  region: z.string(),
  signal_type: z.string(),
  units: z.string(),
  data_point_period_seconds: z.number().positive().optional(),
  generated_at: isoDate.optional(),
});
const SERIES = z.object({ data: z.array(DATA_POINT), meta: META });
const SIGNAL_INDEX = z.object({
  data: z.array(z.object({ point_time: isoDate, value: z.number().min(0).max(100) })).min(1),
  meta: META.extend({ units: z.literal('percentile') }),
});

export interface SignalIndex {
  readonly region: string;
  readonly at: string;
  /** 0 = cleanest, 100 = dirtiest relative to the region's recent range. */
  readonly percentile: number;
}

export class WattTimeProvider implements CarbonProvider {
  readonly name = 'watttime';
  readonly signal = 'marginal' as const;
  private readonly client: JsonHttpClient;
  private readonly now: () => number;
  private token: { value: string; expiresAtMs: number } | undefined;
  private pendingLogin: Promise<string> | undefined;
  /** Number of successful logins, for diagnostics and tests of the token cache. */
  loginCount = 0;

  constructor(private readonly options: WattTimeOptions) {
    this.client = new JsonHttpClient({
      ...options.http,
      provider: this.name,
      baseUrl: options.baseUrl,
      secrets: () => [options.password, this.token?.value ?? '', basic(options.username, options.password)],
    });
    this.now = options.http.now ?? Date.now;
  }

  zoneForRegion(region: AzureRegionInfo): string {
    return (this.options.regionMap ?? DEFAULT_REGION_MAP)[region.region] ?? region.zone;
  }

  async latest(zone: string): Promise<IntensityPoint> {
    const endMs = this.now();
    const points = await this.historical(zone, endMs - 3_600_000, endMs);
    return requireUsable(points, this.name, `latest MOER for ${zone}`);
  }

  async history(zone: string, fromIso: string, toIso: string): Promise<IntensityPoint[]> {
    const { fromMs, toMs } = parseRange(fromIso, toIso);
    const points: IntensityPoint[] = [];
    for (let startMs = fromMs; startMs < toMs; startMs += HISTORY_CHUNK_MS) {
      points.push(...(await this.historical(zone, startMs, Math.min(toMs, startMs + HISTORY_CHUNK_MS))));
    }
    return dedupeByStart(points);
  }

  async forecast(zone: string, horizonHours: number): Promise<Forecast> {
    checkHorizon(horizonHours);
    const body = await this.authorized((headers) =>
      this.client.getJson({
        path: '/v3/forecast',
        query: { region: zone, signal_type: 'co2_moer', horizon_hours: horizonHours },
        headers,
        schema: SERIES,
        what: `WattTime forecast for ${zone}`,
      }),
    );
    const points = this.convert(zone, body, 'forecast');
    requireUsable(points, this.name, `forecast for ${zone}`);
    const generatedAt = body.meta.generated_at
      ? new Date(Date.parse(body.meta.generated_at))
      : new Date(this.now());
    return { zone: body.meta.region, generatedAt: generatedAt.toISOString(), points, quality: 'provider' };
  }

  /** Where now sits in the region's recent MOER range (free for every region, unlike the values). */
  async signalIndex(zone: string): Promise<SignalIndex> {
    const body = await this.authorized((headers) =>
      this.client.getJson({
        path: '/v3/signal-index',
        query: { region: zone, signal_type: 'co2_moer' },
        headers,
        schema: SIGNAL_INDEX,
        what: `WattTime signal index for ${zone}`,
      }),
    );
    const last = body.data[body.data.length - 1];
    return {
      region: body.meta.region,
      at: new Date(Date.parse(last.point_time)).toISOString(),
      percentile: last.value,
    };
  }

  private async historical(zone: string, startMs: number, endMs: number): Promise<IntensityPoint[]> {
    const body = await this.authorized((headers) =>
      this.client.getJson({
        path: '/v3/historical',
        query: {
          region: zone,
          signal_type: 'co2_moer',
          start: new Date(startMs).toISOString(),
          end: new Date(endMs).toISOString(),
        },
        headers,
        schema: SERIES,
        what: `WattTime historical MOER for ${zone}`,
      }),
    );
    return this.convert(zone, body, 'measured');
  }

  private convert(
    zone: string,
    body: z.output<typeof SERIES>,
    source: 'measured' | 'forecast',
  ): IntensityPoint[] {
    if (body.meta.units !== 'lbs_co2_per_mwh') {
      throw new ProviderError(
        'PROVIDER_RESPONSE_INVALID',
        `${this.name}: expected units lbs_co2_per_mwh for ${zone}, got ${body.meta.units}`,
        this.name,
      );
    }
    const durationMinutes = (body.meta.data_point_period_seconds ?? 300) / 60;
    return toPoints(
      body.data.map((p) => ({
        startsAtMs: Date.parse(p.point_time),
        durationMinutes,
        gramsPerKwh: p.value === null ? null : p.value * LBS_PER_MWH_TO_GRAMS_PER_KWH,
      })),
      // The region WattTime answered for, so a reply for another region fails the chain's zone check.
      { zone: body.meta.region, signal: this.signal, provider: this.name, source },
    );
  }

  /** Runs a call with a valid bearer token; one fresh login and retry if the token is refused. */
  private async authorized<T>(call: (headers: Record<string, string>) => Promise<T>): Promise<T> {
    const token = await this.validToken();
    try {
      return await call({ authorization: `Bearer ${token}` });
    } catch (error) {
      if (!isGreenMlError(error) || error.code !== 'PROVIDER_UNAUTHORIZED') throw error;
      this.token = undefined;
      const fresh = await this.validToken();
      return call({ authorization: `Bearer ${fresh}` });
    }
  }

  private async validToken(): Promise<string> {
    if (this.token && this.now() < this.token.expiresAtMs - TOKEN_RENEW_MARGIN_MS) return this.token.value;
    // Concurrent callers share one login instead of each spending the login rate limit.
    this.pendingLogin ??= this.login().finally(() => {
      this.pendingLogin = undefined;
    });
    return this.pendingLogin;
  }

  private async login(): Promise<string> {
    const body = await this.client.getJson({
      path: '/login',
      headers: { authorization: `Basic ${basic(this.options.username, this.options.password)}` },
      schema: LOGIN,
      what: 'WattTime login',
    });
    this.token = { value: body.token, expiresAtMs: this.now() + TOKEN_LIFETIME_MS };
    this.loginCount++;
    return body.token;
  }
}

function basic(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`).toString('base64');
}
