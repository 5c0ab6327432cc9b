/**
 * The carbon vocabulary every module shares. Intensities are always gCO2eq/kWh; a point covers
 * [startsAt, startsAt + durationMinutes). Every point names its provider, signal and how it was
 * obtained, because mixing marginal and average signals (or real and fallback values) silently
 * would make region rankings meaningless.
 */
export type SignalType = 'average' | 'marginal';

/**
 * How a value was obtained: measured/reported by the provider, forecast, a fallback, or interpolated
 * across a short gap in a provider's forecast (see plausibility.ts).
 */
export type PointSource = 'measured' | 'forecast' | 'cached' | 'annual-average' | 'trace' | 'interpolated';

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
  /**
   * `provider` only for a forecast a live provider just served and that passed the checks; `perfect`
   * only for the trace provider's oracle mode. A fallback says what it is (`cached`, `annual-average`),
   * so nothing downstream mistakes a last-known or flat yearly figure for the provider's view.
   */
  readonly quality: ForecastQuality;
}

export const FORECAST_QUALITIES = [
  'provider',
  'realistic-simulated',
  'perfect',
  'cached',
  'annual-average',
] as const;
export type ForecastQuality = (typeof FORECAST_QUALITIES)[number];

export const POINT_SOURCES = [
  'measured',
  'forecast',
  'cached',
  'annual-average',
  'trace',
  'interpolated',
] as const satisfies readonly PointSource[];
