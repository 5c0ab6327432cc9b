import { ProviderError, describeError, isGreenMlError } from '../errors';
import { AnnualAverageProvider } from './annualAverage';
import type { AzureRegionInfo } from './azureRegions';
import {
  type CarbonRejection,
  type CheckOptions,
  checkForecast,
  checkHistory,
  checkReading,
  describeRepair,
  rejectionOf,
} from './plausibility';
import type { CarbonProvider } from './provider';
import type { ReadingCache } from './readingCache';
import type { Forecast, IntensityPoint } from './types';

/**
 * Per zone: live provider -> last cached reading/forecast (with its age) -> annual average. Carbon
 * data steers scheduling but must never block it, so a link's failure is recorded and the next link
 * answers; only when every link fails does the caller get an error. Every point keeps saying where it
 * came from (`source`), and the trail says which links failed and why.
 *
 * Nothing is believed unchecked (plausibility.ts): a live answer that is implausible, for another
 * zone, from the future or too old is a failed link with its `rejection` reason, is not cached, and
 * the next link answers. Only a checked live forecast keeps quality `provider`; the cache answers
 * `cached`, the last resort `annual-average`.
 */
export type ChainLink = 'live' | 'cache' | 'annual-average';

export interface ChainFailure {
  readonly link: ChainLink;
  readonly zone: string;
  readonly code: string;
  readonly message: string;
  /** Set when the link answered but its data was refused by the checks. */
  readonly rejection?: CarbonRejection;
}

export type ChainChecks = Omit<CheckOptions, 'nowMs'>;

export const DEFAULT_CHAIN_CHECKS: ChainChecks = {
  liveMaxAgeMinutes: 180,
  clockSkewMinutes: 5,
  maxGapMinutes: 180,
};

export interface ChainOutcome<T> {
  readonly value: T;
  readonly servedBy: ChainLink;
  /** Minutes between the value's interval start (or forecast issue) and now; 0 for live answers. */
  readonly ageMinutes: number;
  readonly failures: readonly ChainFailure[];
}

export interface FallbackChainOptions {
  readonly live: CarbonProvider;
  /** Without a cache the chain goes straight from live to the annual average. */
  readonly cache?: ReadingCache;
  readonly annualAverage?: CarbonProvider;
  readonly now?: () => Date;
  /** A cached reading older than this is not used (a week-old value says little about now). */
  readonly maxCacheAgeMinutes?: number;
  /** Called for every failed link, e.g. to log or count it; never throws into the chain. */
  readonly onFailure?: (failure: ChainFailure) => void;
  /** Called for data that was repaired rather than refused (a filled gap, dropped duplicates). */
  readonly onNotice?: (message: string) => void;
  readonly checks?: Partial<ChainChecks>;
}

const DEFAULT_MAX_CACHE_AGE_MINUTES = 24 * 60;

export class FallbackChain implements CarbonProvider {
  readonly name: string;
  readonly signal: CarbonProvider['signal'];
  private readonly now: () => Date;
  private readonly annualAverage: CarbonProvider;
  private readonly checks: ChainChecks;

  constructor(private readonly options: FallbackChainOptions) {
    this.checks = { ...DEFAULT_CHAIN_CHECKS, ...options.checks };
    this.name = `chain:${options.live.name}`;
    this.signal = options.live.signal;
    this.now = options.now ?? (() => new Date());
    this.annualAverage = options.annualAverage ?? new AnnualAverageProvider(this.now);
  }

  zoneForRegion(region: AzureRegionInfo): string {
    return this.options.live.zoneForRegion ? this.options.live.zoneForRegion(region) : region.zone;
  }

  async latest(zone: string): Promise<IntensityPoint> {
    return (await this.latestWithTrail(zone)).value;
  }

  async history(zone: string, fromIso: string, toIso: string): Promise<IntensityPoint[]> {
    return (await this.historyWithTrail(zone, fromIso, toIso)).value;
  }

  async forecast(zone: string, horizonHours: number): Promise<Forecast> {
    return (await this.forecastWithTrail(zone, horizonHours)).value;
  }

  async latestWithTrail(zone: string): Promise<ChainOutcome<IntensityPoint>> {
    const failures: ChainFailure[] = [];
    const live = await this.attempt('live', zone, failures, async () => {
      const point = await this.options.live.latest(zone);
      return { point, ageMinutes: checkReading(point, zone, this.checkOptions()) };
    });
    if (live) {
      await this.attempt(
        'cache',
        zone,
        failures,
        () => this.options.cache?.recordReading(live.point) ?? Promise.resolve(),
      );
      return { value: live.point, servedBy: 'live', ageMinutes: live.ageMinutes, failures };
    }
    const cache = this.options.cache;
    if (cache) {
      const cached = await this.attempt('cache', zone, failures, async () => {
        const reading = await cache.lastReading(zone);
        if (!reading) throw new ProviderError('NO_DATA', `no cached reading for ${zone}`, 'cache');
        const ageMinutes = checkReading(reading.point, zone, this.checkOptions(this.maxCacheAgeMinutes));
        return { point: { ...reading.point, source: 'cached' as const }, ageMinutes };
      });
      if (cached) return { value: cached.point, servedBy: 'cache', ageMinutes: cached.ageMinutes, failures };
    }
    const average = await this.attempt('annual-average', zone, failures, () =>
      this.annualAverage.latest(zone),
    );
    if (average) return { value: average, servedBy: 'annual-average', ageMinutes: 0, failures };
    throw this.exhausted('latest intensity', zone, failures);
  }

  async forecastWithTrail(zone: string, horizonHours: number): Promise<ChainOutcome<Forecast>> {
    const failures: ChainFailure[] = [];
    const live = await this.attempt('live', zone, failures, async () => {
      const checked = checkForecast(
        await this.options.live.forecast(zone, horizonHours),
        zone,
        this.checkOptions(),
      );
      const notice = describeRepair(zone, checked.repair);
      if (notice) this.notice(notice);
      return checked;
    });
    if (live) {
      await this.attempt(
        'cache',
        zone,
        failures,
        () => this.options.cache?.saveForecast(live.forecast) ?? Promise.resolve(),
      );
      return { value: live.forecast, servedBy: 'live', ageMinutes: live.ageMinutes, failures };
    }
    const cache = this.options.cache;
    if (cache) {
      const cached = await this.attempt('cache', zone, failures, async () => {
        const stored = await cache.latestForecast(zone);
        if (!stored) throw new ProviderError('NO_DATA', `no cached forecast for ${zone}`, 'cache');
        const nowMs = this.now().getTime();
        const horizonEndMs = nowMs + horizonHours * 3_600_000;
        // Only what is still ahead is a forecast; the past part of an old forecast is not.
        const points = stored.forecast.points
          .filter((p) => Date.parse(p.startsAt) + p.durationMinutes * 60_000 > nowMs)
          .filter((p) => Date.parse(p.startsAt) < horizonEndMs)
          .map((p) => ({ ...p, source: 'cached' as const }));
        if (points.length === 0)
          throw new ProviderError('NO_DATA', `cached forecast for ${zone} has expired`, 'cache');
        const checked = checkForecast(
          { ...stored.forecast, points, quality: 'cached' },
          zone,
          this.checkOptions(this.maxCacheAgeMinutes),
        );
        return { forecast: checked.forecast, ageMinutes: checked.ageMinutes };
      });
      if (cached)
        return { value: cached.forecast, servedBy: 'cache', ageMinutes: cached.ageMinutes, failures };
    }
    const average = await this.attempt('annual-average', zone, failures, () =>
      this.annualAverage.forecast(zone, horizonHours),
    );
    if (average) return { value: average, servedBy: 'annual-average', ageMinutes: 0, failures };
    throw this.exhausted('forecast', zone, failures);
  }

  async historyWithTrail(
    zone: string,
    fromIso: string,
    toIso: string,
  ): Promise<ChainOutcome<IntensityPoint[]>> {
    const failures: ChainFailure[] = [];
    const live = await this.attempt('live', zone, failures, async () =>
      checkHistory(await this.options.live.history(zone, fromIso, toIso), zone, this.checkOptions()),
    );
    if (live && live.length > 0) return { value: live, servedBy: 'live', ageMinutes: 0, failures };
    const cache = this.options.cache;
    if (cache) {
      const cached = await this.attempt('cache', zone, failures, async () =>
        checkHistory(await cache.readings(zone, fromIso, toIso), zone, this.checkOptions()),
      );
      if (cached && cached.length > 0) {
        const points = cached.map((p) => ({ ...p, source: 'cached' as const }));
        return { value: points, servedBy: 'cache', ageMinutes: 0, failures };
      }
    }
    const average = await this.attempt('annual-average', zone, failures, () =>
      this.annualAverage.history(zone, fromIso, toIso),
    );
    if (average) return { value: average, servedBy: 'annual-average', ageMinutes: 0, failures };
    throw this.exhausted('history', zone, failures);
  }

  private get maxCacheAgeMinutes(): number {
    return this.options.maxCacheAgeMinutes ?? DEFAULT_MAX_CACHE_AGE_MINUTES;
  }

  private checkOptions(maxAgeMinutes = this.checks.liveMaxAgeMinutes): CheckOptions {
    return { ...this.checks, liveMaxAgeMinutes: maxAgeMinutes, nowMs: this.now().getTime() };
  }

  private notice(message: string): void {
    try {
      this.options.onNotice?.(message);
    } catch {
      // Same as onFailure: logging never decides.
    }
  }

  private async attempt<T>(
    link: ChainLink,
    zone: string,
    failures: ChainFailure[],
    run: () => Promise<T>,
  ): Promise<T | undefined> {
    try {
      return await run();
    } catch (error) {
      const failure: ChainFailure = {
        link,
        zone,
        code: isGreenMlError(error) ? error.code : 'UNEXPECTED',
        message: describeError(error),
        ...(rejectionOf(error) ? { rejection: rejectionOf(error) } : {}),
      };
      failures.push(failure);
      try {
        this.options.onFailure?.(failure);
      } catch {
        // A broken logger must not turn a recoverable provider outage into a failed decision.
      }
      return undefined;
    }
  }

  private exhausted(what: string, zone: string, failures: readonly ChainFailure[]): ProviderError {
    const summary = failures.map((f) => `${f.link}: ${f.message}`).join('; ');
    return new ProviderError('NO_DATA', `No ${what} for ${zone} from any source (${summary})`, this.name, {
      details: { failures },
    });
  }
}
