/**
 * The carbon vocabulary every module shares. Intensities are always gCO2eq/kWh; a point covers
 * [startsAt, startsAt + durationMinutes). Every point names its provider, signal and how it was
 * obtained, because mixing marginal and average signals (or real and fallback values) silently
 * would make region rankings meaningless.
 */
export type SignalType = 'average' | 'marginal';

/** How a value was obtained: measured/reported by the provider, forecast, or a fallback. */
export type PointSource = 'measured' | 'forecast' | 'cached' | 'annual-average' | 'trace';

export interface IntensityPoint {
  /** Interval start, ISO-8601 UTC. */
  readonly startsAt: string;
  readonly durationMinutes: number;
  readonly gramsPerKwh: number;
  /** Grid zone (Electricity Maps key, or the provider's own region id). */
  readonly zone: string;
  readonly signal: SignalType;
  /** e.g. `electricitymaps`, `watttime`, `trace:em_NL_2022`, `co2js:electricityMaps.yearly2022`. */
  readonly provider: string;
  readonly source: PointSource;
}

/** A forecast: the points plus when it was issued and whether it is the (perfect) future itself. */
export interface Forecast {
  readonly zone: string;
  readonly region?: string;
  readonly generatedAt: string;
  readonly points: readonly IntensityPoint[];
  /** `perfect` only for the trace provider's oracle mode; real providers are `provider`. */
  readonly quality: 'provider' | 'realistic-simulated' | 'perfect';
}
