import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { CarbonAwareSdkProvider } from '../../shared/carbon/carbonAwareSdk';
import { withCarbonDeadline } from '../../shared/carbon/deadline';
import { ElectricityMapsProvider } from '../../shared/carbon/electricityMaps';
import { type ChainFailure, type ChainLink, FallbackChain } from '../../shared/carbon/fallbackChain';
import type { HttpTuning } from '../../shared/carbon/http';
import type { CarbonProvider } from '../../shared/carbon/provider';
import { UkCarbonIntensityProvider } from '../../shared/carbon/ukCarbonIntensity';
import { LBS_PER_MWH_TO_GRAMS_PER_KWH, WattTimeProvider } from '../../shared/carbon/wattTime';
import { chooseWindow } from '../../shared/policy/windowChoice';

/**
 * Hostile provider replies, each served by a loopback HTTP server in the provider's own wire format
 * (Electricity Maps v3, WattTime v3, UK Carbon Intensity, Carbon Aware SDK Web API), and what the
 * fallback chain makes of them under one poll deadline. Shared by the fault tests (which assert the
 * outcome of every case) and `npm run bench:carbon-faults` (which prints the table with timings).
 */
export const PROVIDERS = ['electricitymaps', 'watttime', 'ukcarbonintensity', 'carbonawaresdk'] as const;
export type ProviderKind = (typeof PROVIDERS)[number];

export const FAULTS = [
  'valid',
  'tiny-value',
  'huge-value',
  'dated-2001',
  'dated-2099',
  'forecast-200h-old',
  'other-zone',
  'duplicate-timestamps',
  'missing-hour',
  'hang',
  'retry-after-3600',
  'all-down',
] as const;
export type Fault =
  (typeof FAULTS)[number] | 'sdk-upstream-region' | 'sdk-zero-length-point' | 'missing-hour-gap-fill-off';

export type Operation = 'latest' | 'forecast' | 'best-window';

export const OPERATION_OF: Record<Fault, Operation> = {
  valid: 'forecast',
  'tiny-value': 'latest',
  'huge-value': 'latest',
  'dated-2001': 'latest',
  'dated-2099': 'latest',
  'forecast-200h-old': 'forecast',
  'other-zone': 'latest',
  'duplicate-timestamps': 'forecast',
  'missing-hour': 'best-window',
  'missing-hour-gap-fill-off': 'best-window',
  hang: 'forecast',
  'retry-after-3600': 'forecast',
  'all-down': 'forecast',
  'sdk-upstream-region': 'latest',
  'sdk-zero-length-point': 'latest',
};

export const NOW_MS = Date.parse('2025-03-04T13:20:00Z');
export const POLL_DEADLINE_MS = 3000;
const HOUR_MS = 3_600_000;
const CURRENT_HOUR_MS = Math.floor(NOW_MS / HOUR_MS) * HOUR_MS;

/** Hour h of the forecast shape: a cleaner window 19 h ahead, and hour 2 missing in `missing-hour`. */
export function forecastGrams(hour: number): number {
  if (hour === 0) return 200;
  if (hour === 1) return 205;
  if (hour === 19) return 150;
  if (hour === 20) return 155;
  return 260;
}

interface Reading {
  readonly atMs: number;
  readonly grams: number;
  readonly zone: string;
}
interface Slot {
  readonly atMs: number;
  readonly grams: number;
}
interface ForecastData {
  readonly zone: string;
  readonly generatedAtMs: number;
  readonly hours: readonly Slot[];
}

type Reply = { status?: number; headers?: Record<string, string>; body?: unknown } | 'hang';

interface Wire {
  /** The zone key asked for, and the Azure region it stands for. */
  readonly zone: string;
  readonly region: string;
  readonly otherZone: string;
  build(baseUrl: string, http: HttpTuning, onNotice: (m: string) => void): CarbonProvider;
  reply(path: string, latest: Reading, forecast: ForecastData, fault: Fault): Reply;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const expand = (hours: readonly Slot[], perHour: number): Slot[] =>
  hours.flatMap((h) =>
    Array.from({ length: perHour }, (_, k) => ({ atMs: h.atMs + (k * HOUR_MS) / perHour, grams: h.grams })),
  );

const WIRES: Record<ProviderKind, Wire> = {
  electricitymaps: {
    zone: 'DE',
    region: 'germanywestcentral',
    otherZone: 'PL',
    build: (baseUrl, tuning) =>
      new ElectricityMapsProvider({ baseUrl, token: 'em-secret-token', http: tuning }),
    reply(path, latest, forecast) {
      if (path === '/carbon-intensity/latest') {
        return {
          body: {
            zone: latest.zone,
            carbonIntensity: latest.grams,
            datetime: iso(latest.atMs),
            updatedAt: iso(latest.atMs + 600_000),
            emissionFactorType: 'lifecycle',
            isEstimated: false,
          },
        };
      }
      return {
        body: {
          zone: forecast.zone,
          forecast: forecast.hours.map((h) => ({ carbonIntensity: h.grams, datetime: iso(h.atMs) })),
          updatedAt: iso(forecast.generatedAtMs),
        },
      };
    },
  },
  watttime: {
    zone: 'CAISO_NORTH',
    region: 'westus',
    otherZone: 'PJM_DC',
    build: (baseUrl, tuning) =>
      new WattTimeProvider({ baseUrl, username: 'wt-user', password: 'wt-secret-password', http: tuning }),
    reply(path, latest, forecast) {
      if (path === '/login') return { body: { token: 'wt-bearer-token' } };
      const lbs = (grams: number): number => grams / LBS_PER_MWH_TO_GRAMS_PER_KWH;
      const meta = (region: string, generatedAtMs: number) => ({
        region,
        signal_type: 'co2_moer',
        units: 'lbs_co2_per_mwh',
        data_point_period_seconds: 300,
        generated_at: iso(generatedAtMs),
        model: { date: '2024-10-01', type: 'binned_regression' },
        warnings: [],
      });
      if (path === '/v3/historical') {
        return {
          body: {
            data: [{ point_time: iso(latest.atMs), value: lbs(latest.grams) }],
            meta: meta(latest.zone, latest.atMs),
          },
        };
      }
      return {
        body: {
          data: expand(forecast.hours, 12).map((s) => ({ point_time: iso(s.atMs), value: lbs(s.grams) })),
          meta: meta(forecast.zone, forecast.generatedAtMs),
        },
      };
    },
  },
  ukcarbonintensity: {
    zone: '13',
    region: 'uksouth',
    otherZone: '14',
    build: (baseUrl, tuning) => new UkCarbonIntensityProvider({ baseUrl, http: tuning }),
    reply(path, latest, forecast) {
      const slots = (zone: string, from: readonly Slot[]) => ({
        data: [
          {
            regionid: Number(zone),
            dnoregion: 'SSE South',
            shortname: 'South England',
            data: from.map((s) => ({
              from: `${iso(s.atMs).slice(0, 16)}Z`,
              to: `${iso(s.atMs + 1_800_000).slice(0, 16)}Z`,
              intensity: { forecast: s.grams, index: 'moderate' },
              generationmix: [],
            })),
          },
        ],
      });
      if (path.startsWith('/regional/regionid/')) {
        return { body: slots(latest.zone, [{ atMs: latest.atMs, grams: latest.grams }]) };
      }
      return { body: slots(forecast.zone, expand(forecast.hours, 2)) };
    },
  },
  carbonawaresdk: {
    zone: 'germanywestcentral',
    region: 'germanywestcentral',
    otherZone: 'francecentral',
    build: (baseUrl, tuning, onNotice) =>
      new CarbonAwareSdkProvider({ baseUrl, http: tuning, signal: 'average', onWarning: onNotice }),
    reply(path, latest, forecast, fault) {
      if (path === '/emissions/bylocations') {
        if (fault === 'sdk-upstream-region') {
          // WattTime behind the SDK: `location` is the balancing authority, and a single upstream
          // point has no duration (WattTimeDataSource.ConvertToEmissionsData, carbon-aware-sdk @ e6de58d).
          return {
            body: [
              {
                location: 'CAISO_NORTH',
                time: iso(latest.atMs - 300_000),
                rating: 280,
                duration: '00:05:00',
              },
              { location: 'CAISO_NORTH', time: iso(latest.atMs), rating: 290, duration: '00:05:00' },
            ],
          };
        }
        const rows = [
          { location: latest.zone, time: iso(latest.atMs), rating: latest.grams, duration: '01:00:00' },
        ];
        if (fault === 'sdk-zero-length-point') {
          rows.push({
            location: latest.zone,
            time: iso(latest.atMs + 300_000),
            rating: 999,
            duration: '00:00:00',
          });
        }
        return { body: rows };
      }
      return {
        body: [
          {
            requestedAt: iso(NOW_MS),
            generatedAt: iso(forecast.generatedAtMs),
            location: forecast.zone,
            dataStartAt: iso(forecast.hours[0]?.atMs ?? NOW_MS),
            dataEndAt: iso((forecast.hours.at(-1)?.atMs ?? NOW_MS) + HOUR_MS),
            windowSize: 60,
            optimalDataPoint: null,
            forecastData: forecast.hours.map((h) => ({
              location: forecast.zone,
              timestamp: iso(h.atMs),
              duration: 60,
              value: h.grams,
            })),
          },
        ],
      };
    },
  },
};

export function wireFor(provider: ProviderKind): Pick<Wire, 'zone' | 'region'> {
  return WIRES[provider];
}

function scenario(wire: Wire, fault: Fault): { latest: Reading; forecast: ForecastData } {
  const hours = Array.from({ length: 24 }, (_, h) => ({
    atMs: CURRENT_HOUR_MS + h * HOUR_MS,
    grams: forecastGrams(h),
  }));
  let latest: Reading = { atMs: CURRENT_HOUR_MS, grams: 300, zone: wire.zone };
  let forecast: ForecastData = { zone: wire.zone, generatedAtMs: CURRENT_HOUR_MS, hours };
  switch (fault) {
    case 'tiny-value':
      latest = { ...latest, grams: 0.0001 };
      break;
    case 'huge-value':
      latest = { ...latest, grams: 1e12 };
      break;
    case 'dated-2001':
      latest = { ...latest, atMs: Date.parse('2001-03-04T13:00:00Z') };
      break;
    case 'dated-2099':
      latest = { ...latest, atMs: Date.parse('2099-03-04T13:00:00Z') };
      break;
    case 'forecast-200h-old':
      forecast = {
        ...forecast,
        generatedAtMs: CURRENT_HOUR_MS - 200 * HOUR_MS,
        hours: hours.map((h) => ({ ...h, atMs: h.atMs - 200 * HOUR_MS })),
      };
      break;
    case 'other-zone':
      latest = { ...latest, zone: wire.otherZone };
      break;
    case 'duplicate-timestamps':
      forecast = { ...forecast, hours: hours.flatMap((h) => [h, { ...h, grams: h.grams + 1 }]) };
      break;
    case 'missing-hour':
    case 'missing-hour-gap-fill-off':
      forecast = { ...forecast, hours: hours.filter((_, h) => h !== 2) };
      break;
    default:
      break;
  }
  return { latest, forecast };
}

export interface FaultResult {
  readonly provider: ProviderKind;
  readonly fault: Fault;
  readonly operation: Operation;
  readonly servedBy: ChainLink;
  readonly failures: readonly ChainFailure[];
  readonly notices: readonly string[];
  readonly elapsedMs: number;
  readonly requests: number;
  readonly latest?: { zone: string; gramsPerKwh: number; signal: string; source: string };
  readonly forecast?: { quality: string; points: number; interpolated: number; firstStartsAt: string };
  readonly window?: { kind: string; startAt: string; expectedGramsPerKwh: number | null };
}

async function startServer(
  handler: (path: string) => Reply,
): Promise<{ baseUrl: string; requests: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = http.createServer((req, res) => {
    count++;
    const reply = handler(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    if (reply === 'hang') return; // never answers; closed with the server
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
    res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests: () => count,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RunOptions {
  readonly deadlineMs?: number;
  /** First backoff ceiling of the HTTP client (tests shorten it). */
  readonly baseDelayMs?: number;
}

/**
 * Runs one case: a fresh server and chain (no cache, so a refused live link falls to the annual
 * average). `missing-hour-gap-fill-off` is the baseline of `missing-hour`: the same forecast with gap
 * filling disabled, i.e. what the scheduler did before.
 */
export async function runFault(
  provider: ProviderKind,
  fault: Fault,
  options: RunOptions = {},
): Promise<FaultResult> {
  const wire = WIRES[provider];
  const { latest, forecast } = scenario(wire, fault);
  const server = await startServer((path) => {
    if (fault === 'hang') return 'hang';
    if (fault === 'retry-after-3600')
      return { status: 429, headers: { 'retry-after': '3600' }, body: { message: 'slow down' } };
    if (fault === 'all-down') return { status: 503, body: { message: 'maintenance' } };
    return wire.reply(path, latest, forecast, fault);
  });
  const notices: string[] = [];
  const failures: ChainFailure[] = [];
  const tuning: HttpTuning = {
    timeoutMs: 10_000,
    maxRetries: 3,
    baseDelayMs: options.baseDelayMs,
    random: () => 0.5,
    now: () => NOW_MS,
  };
  const chain = new FallbackChain({
    live: wire.build(server.baseUrl, tuning, (m) => notices.push(m)),
    now: () => new Date(NOW_MS),
    onNotice: (m) => notices.push(m),
    checks: fault === 'missing-hour-gap-fill-off' ? { maxGapMinutes: 0 } : {},
  });
  const operation = OPERATION_OF[fault];
  const started = performance.now();
  try {
    return await withCarbonDeadline(options.deadlineMs ?? POLL_DEADLINE_MS, async () => {
      if (operation === 'latest') {
        const outcome = await chain.latestWithTrail(wire.zone);
        failures.push(...outcome.failures);
        const p = outcome.value;
        return {
          provider,
          fault,
          operation,
          servedBy: outcome.servedBy,
          failures,
          notices,
          elapsedMs: performance.now() - started,
          requests: server.requests(),
          latest: { zone: p.zone, gramsPerKwh: p.gramsPerKwh, signal: p.signal, source: p.source },
        };
      }
      const outcome = await chain.forecastWithTrail(wire.zone, 24);
      failures.push(...outcome.failures);
      const f = outcome.value;
      const summary = {
        quality: f.quality,
        points: f.points.length,
        interpolated: f.points.filter((p) => p.source === 'interpolated').length,
        firstStartsAt: f.points[0]?.startsAt ?? '-',
      };
      const window =
        operation === 'best-window'
          ? chooseWindow({
              candidates: [{ region: wire.region, forecast: f }],
              homeRegion: wire.region,
              residency: 'ANY',
              durationMinutes: 60,
              earliestStart: iso(NOW_MS),
              deadline: iso(NOW_MS + 24 * HOUR_MS),
            })
          : undefined;
      return {
        provider,
        fault,
        operation,
        servedBy: outcome.servedBy,
        failures,
        notices,
        elapsedMs: performance.now() - started,
        requests: server.requests(),
        forecast: summary,
        window: window && {
          kind: window.kind,
          startAt: window.startAt,
          expectedGramsPerKwh: window.expectedGramsPerKwh,
        },
      };
    });
  } finally {
    await server.close();
  }
}

/** Every fault for every provider, plus the SDK's own cases. */
export function allCases(): { provider: ProviderKind; fault: Fault }[] {
  const cases: { provider: ProviderKind; fault: Fault }[] = [];
  for (const provider of PROVIDERS) for (const fault of FAULTS) cases.push({ provider, fault });
  cases.push({ provider: 'electricitymaps', fault: 'missing-hour-gap-fill-off' });
  cases.push({ provider: 'carbonawaresdk', fault: 'sdk-upstream-region' });
  cases.push({ provider: 'carbonawaresdk', fault: 'sdk-zero-length-point' });
  return cases;
}

/** One line per case for the table: what happened and why. */
export function describeOutcome(r: FaultResult): { outcome: string; detail: string } {
  const refused = r.failures.find((f) => f.link === 'live');
  const why = refused ? (refused.rejection ?? refused.code) : null;
  const outcome =
    r.servedBy === 'live'
      ? r.notices.length > 0 || r.failures.length > 0
        ? 'accepted, repaired'
        : 'accepted'
      : `rejected (${why ?? '?'}) → ${r.servedBy}`;
  const parts: string[] = [];
  if (r.latest)
    parts.push(`${r.latest.zone} ${round(r.latest.gramsPerKwh)} g ${r.latest.signal} ${r.latest.source}`);
  if (r.forecast) {
    parts.push(`quality ${r.forecast.quality}, ${r.forecast.points} pts`);
    if (r.forecast.interpolated > 0) parts.push(`${r.forecast.interpolated} interpolated`);
  }
  if (r.window)
    parts.push(
      `window ${r.window.kind} ${r.window.startAt.slice(11, 16)} at ${round(r.window.expectedGramsPerKwh ?? NaN)} g`,
    );
  if (r.notices.length > 0 && r.servedBy === 'live' && !r.forecast?.interpolated)
    parts.push(r.notices[0].slice(0, 60));
  return { outcome, detail: parts.join('; ') };
}

function round(value: number): string {
  return Number.isFinite(value) ? String(Math.round(value * 10) / 10) : '-';
}
