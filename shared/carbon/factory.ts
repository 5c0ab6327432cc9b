import { ConfigError } from '../errors';
import { SETTINGS_SCHEMA, type Settings } from '../config';
import { CarbonAwareSdkProvider } from './carbonAwareSdk';
import { ElectricityMapsProvider } from './electricityMaps';
import { type ChainChecks, FallbackChain, type ChainFailure } from './fallbackChain';
import type { HttpTuning } from './http';
import type { CarbonProvider } from './provider';
import type { ReadingCache } from './readingCache';
import { TraceProvider } from './traceProvider';
import { UkCarbonIntensityProvider } from './ukCarbonIntensity';
import { WattTimeProvider } from './wattTime';

/** The carbon settings the factory reads; the CLI passes these without storage settings. */
export type CarbonSettings = Pick<
  Settings,
  | 'CARBON_PROVIDER'
  | 'CARBON_TRACE_YEAR'
  | 'CARBON_TRACE_FORECAST'
  | 'CARBON_TRACE_SEED'
  | 'ELECTRICITYMAPS_API_TOKEN'
  | 'ELECTRICITYMAPS_BASE_URL'
  | 'WATTTIME_USERNAME'
  | 'WATTTIME_PASSWORD'
  | 'WATTTIME_BASE_URL'
  | 'UK_CARBON_INTENSITY_BASE_URL'
  | 'CARBON_AWARE_SDK_BASE_URL'
  | 'CARBON_HTTP_TIMEOUT_MS'
  | 'CARBON_HTTP_MAX_RETRIES'
  | 'CARBON_LIVE_MAX_AGE_MINUTES'
  | 'CARBON_CLOCK_SKEW_MINUTES'
  | 'CARBON_FORECAST_MAX_GAP_MINUTES'
  | 'CARBON_AWARE_SDK_SIGNAL'
>;

export interface CarbonProviderDeps {
  /** Clock for the trace replay and token expiry; defaults to the system clock. */
  readonly now?: () => Date;
  readonly random?: () => number;
  /** Data repaired or dropped rather than refused (filled gaps, zero-length SDK points). */
  readonly onNotice?: (message: string) => void;
}

/** Picks the provider named by CARBON_PROVIDER, configured from settings. */
export function createCarbonProvider(
  settings: CarbonSettings,
  deps: CarbonProviderDeps = {},
): CarbonProvider {
  const now = deps.now ?? (() => new Date());
  const http: HttpTuning = {
    timeoutMs: settings.CARBON_HTTP_TIMEOUT_MS,
    maxRetries: settings.CARBON_HTTP_MAX_RETRIES,
    now: () => now().getTime(),
    random: deps.random,
  };
  switch (settings.CARBON_PROVIDER) {
    case 'trace':
      return new TraceProvider({
        year: settings.CARBON_TRACE_YEAR,
        forecastMode: settings.CARBON_TRACE_FORECAST,
        seed: settings.CARBON_TRACE_SEED,
        now,
      });
    case 'electricitymaps':
      return new ElectricityMapsProvider({
        baseUrl: settings.ELECTRICITYMAPS_BASE_URL,
        token: required(settings, 'ELECTRICITYMAPS_API_TOKEN'),
        http,
      });
    case 'watttime':
      return new WattTimeProvider({
        baseUrl: settings.WATTTIME_BASE_URL,
        username: required(settings, 'WATTTIME_USERNAME'),
        password: required(settings, 'WATTTIME_PASSWORD'),
        http,
      });
    case 'ukcarbonintensity':
      return new UkCarbonIntensityProvider({ baseUrl: settings.UK_CARBON_INTENSITY_BASE_URL, http });
    case 'carbonawaresdk':
      return new CarbonAwareSdkProvider({
        baseUrl: required(settings, 'CARBON_AWARE_SDK_BASE_URL'),
        http,
        signal: settings.CARBON_AWARE_SDK_SIGNAL,
        onWarning: deps.onNotice,
      });
  }
}

/** The configured provider behind the fallback chain (cache, then annual average). */
export function createCarbonChain(
  settings: CarbonSettings,
  deps: CarbonProviderDeps & { cache?: ReadingCache; onFailure?: (failure: ChainFailure) => void } = {},
): FallbackChain {
  return new FallbackChain({
    live: createCarbonProvider(settings, deps),
    cache: deps.cache,
    now: deps.now,
    onFailure: deps.onFailure,
    onNotice: deps.onNotice,
    checks: chainChecksFrom(settings),
  });
}

/** The chain's data checks as the settings give them. */
export function chainChecksFrom(settings: CarbonSettings): ChainChecks {
  return {
    liveMaxAgeMinutes: settings.CARBON_LIVE_MAX_AGE_MINUTES,
    clockSkewMinutes: settings.CARBON_CLOCK_SKEW_MINUTES,
    maxGapMinutes: settings.CARBON_FORECAST_MAX_GAP_MINUTES,
  };
}

function required(
  settings: CarbonSettings,
  key: 'ELECTRICITYMAPS_API_TOKEN' | 'WATTTIME_USERNAME' | 'WATTTIME_PASSWORD' | 'CARBON_AWARE_SDK_BASE_URL',
): string {
  const value = settings[key];
  if (!value) {
    throw new ConfigError(`${key} is required with CARBON_PROVIDER=${settings.CARBON_PROVIDER}`, [
      { key, reason: `required with CARBON_PROVIDER=${settings.CARBON_PROVIDER}` },
    ]);
  }
  return value;
}

const CARBON_SETTING_KEYS = [
  'CARBON_PROVIDER',
  'CARBON_TRACE_YEAR',
  'CARBON_TRACE_FORECAST',
  'CARBON_TRACE_SEED',
  'ELECTRICITYMAPS_API_TOKEN',
  'ELECTRICITYMAPS_BASE_URL',
  'WATTTIME_USERNAME',
  'WATTTIME_PASSWORD',
  'WATTTIME_BASE_URL',
  'UK_CARBON_INTENSITY_BASE_URL',
  'CARBON_AWARE_SDK_BASE_URL',
  'CARBON_HTTP_TIMEOUT_MS',
  'CARBON_HTTP_MAX_RETRIES',
  'CARBON_LIVE_MAX_AGE_MINUTES',
  'CARBON_CLOCK_SKEW_MINUTES',
  'CARBON_FORECAST_MAX_GAP_MINUTES',
  'CARBON_AWARE_SDK_SIGNAL',
] as const satisfies readonly (keyof CarbonSettings)[];

/**
 * Only the carbon settings, so tools that never touch storage (the `carbon` CLI) work offline
 * without a connection string. Same rules as loadSettings: blank means unset, one error for all keys.
 */
export function loadCarbonSettings(env: Record<string, string | undefined> = process.env): CarbonSettings {
  const schema = SETTINGS_SCHEMA.pick(
    Object.fromEntries(CARBON_SETTING_KEYS.map((k) => [k, true])) as {
      [K in (typeof CARBON_SETTING_KEYS)[number]]: true;
    },
  );
  const relevant: Record<string, string> = {};
  for (const key of CARBON_SETTING_KEYS) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') relevant[key] = value.trim();
  }
  const parsed = schema.safeParse(relevant);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => ({
      key: String(issue.path[0] ?? '(settings)'),
      reason: issue.message,
    }));
    throw new ConfigError(
      `Invalid carbon settings: ${problems.map((p) => `${p.key}: ${p.reason}`).join('; ')}`,
      problems,
    );
  }
  return parsed.data;
}
