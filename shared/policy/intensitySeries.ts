import type { Forecast } from '../carbon/types';

/**
 * A contiguous, evenly stepped intensity series: value `i` covers
 * [firstStartMs + i·step, firstStartMs + (i+1)·step). This is the form the window search works on;
 * forecasts (ISO points) are converted once with `seriesFromForecast`, and the replay benchmark can
 * hand in trace slices directly without building point objects.
 */
export interface IntensitySeries {
  readonly firstStartMs: number;
  readonly stepMinutes: number;
  readonly gramsPerKwh: ArrayLike<number>;
  readonly quality: Forecast['quality'] | 'actual';
}

const MS_PER_MINUTE = 60_000;

export function seriesEndMs(series: IntensitySeries): number {
  return series.firstStartMs + series.gramsPerKwh.length * series.stepMinutes * MS_PER_MINUTE;
}

/** A usable intensity: providers report 0 (or NaN) during outages, which must read as "missing". */
export function isUsableIntensity(gramsPerKwh: number): boolean {
  return Number.isFinite(gramsPerKwh) && gramsPerKwh > 0;
}

/**
 * Converts a forecast to a series. Points are sorted; the series is the longest contiguous run of
 * usable points from the first one, because a window across a gap or an outage value (0/NaN) would
 * average in data nobody has (the SDK throws there; we end the horizon there instead).
 * Points labelled `annual-average` are dropped too: a flat yearly figure has no time signal, so a
 * "window" chosen on it would be fiction (the start-now fallback uses it instead).
 * Returns null when nothing usable is left.
 */
export function seriesFromForecast(forecast: Forecast): IntensitySeries | null {
  if (forecast.points.length === 0) return null;
  const points = forecast.points
    .filter((p) => p.source !== 'annual-average' && p.durationMinutes > 0)
    .map((p) => ({ startMs: Date.parse(p.startsAt), minutes: p.durationMinutes, grams: p.gramsPerKwh }))
    .filter((p) => Number.isFinite(p.startMs))
    .sort((a, b) => a.startMs - b.startMs);
  const first = points[0];
  if (!first || !isUsableIntensity(first.grams)) return null;
  const stepMinutes = first.minutes;
  const stepMs = stepMinutes * MS_PER_MINUTE;
  const values: number[] = [first.grams];
  for (let i = 1; i < points.length; i++) {
    const p = points[i];
    const expectedStart = first.startMs + values.length * stepMs;
    if (p.startMs < expectedStart) continue; // duplicate slot: keep the first one
    if (p.startMs !== expectedStart || p.minutes !== stepMinutes || !isUsableIntensity(p.grams)) break;
    values.push(p.grams);
  }
  return {
    firstStartMs: first.startMs,
    stepMinutes,
    gramsPerKwh: Float64Array.from(values),
    quality: forecast.quality,
  };
}

/**
 * Prefix integral of a series so that the mean over any interval costs O(1): the window search
 * evaluates thousands of candidate starts per call and the replay calls it tens of thousands of times.
 * Units: gramsPerKwh·minutes, measured from the series start.
 */
export class IntensityIntegral {
  private readonly cumulative: Float64Array;
  readonly startMs: number;
  readonly endMs: number;
  private readonly stepMinutes: number;

  constructor(private readonly series: IntensitySeries) {
    const n = series.gramsPerKwh.length;
    this.cumulative = new Float64Array(n + 1);
    for (let i = 0; i < n; i++)
      this.cumulative[i + 1] = this.cumulative[i] + series.gramsPerKwh[i] * series.stepMinutes;
    this.startMs = series.firstStartMs;
    this.endMs = seriesEndMs(series);
    this.stepMinutes = series.stepMinutes;
  }

  /** ∫ intensity dt from the series start to `atMs` (clamped to the series). */
  integralTo(atMs: number): number {
    const minutes = (Math.min(Math.max(atMs, this.startMs), this.endMs) - this.startMs) / MS_PER_MINUTE;
    const n = this.series.gramsPerKwh.length;
    const index = Math.min(Math.floor(minutes / this.stepMinutes), n - 1);
    if (index < 0) return 0;
    return this.cumulative[index] + this.series.gramsPerKwh[index] * (minutes - index * this.stepMinutes);
  }

  /** Duration-weighted mean over [fromMs, toMs); partial slots count by their overlap. Caller keeps it inside. */
  meanGramsPerKwh(fromMs: number, toMs: number): number {
    return ((this.integralTo(toMs) - this.integralTo(fromMs)) * MS_PER_MINUTE) / (toMs - fromMs);
  }

  /** The value of the slot containing `atMs`, or null outside the series. */
  valueAt(atMs: number): number | null {
    if (atMs < this.startMs || atMs >= this.endMs) return null;
    return this.series.gramsPerKwh[Math.floor((atMs - this.startMs) / (this.stepMinutes * MS_PER_MINUTE))];
  }
}

/** Mean intensity of a run over [fromMs, toMs), or null if the series does not cover it. */
export function meanIntensityOver(series: IntensitySeries, fromMs: number, toMs: number): number | null {
  if (toMs <= fromMs || fromMs < series.firstStartMs || toMs > seriesEndMs(series)) return null;
  return new IntensityIntegral(series).meanGramsPerKwh(fromMs, toMs);
}

/** The shape of any evenly stepped series (a bundled TraceSeries fits); quality defaults to `actual`. */
export type SteppedSeries = Pick<IntensitySeries, 'firstStartMs' | 'stepMinutes' | 'gramsPerKwh'> & {
  readonly quality?: IntensitySeries['quality'];
};

/**
 * The slots overlapping [fromMs, toMs) as a series; shares the backing Float64Array (no copy), so the
 * replay can cut a forecast-sized view out of a year-long trace for every request.
 */
export function sliceSeries(
  series: SteppedSeries,
  fromMs: number,
  toMs: number,
  quality: IntensitySeries['quality'] = series.quality ?? 'actual',
): IntensitySeries | null {
  const stepMs = series.stepMinutes * MS_PER_MINUTE;
  const n = series.gramsPerKwh.length;
  const first = Math.max(0, Math.floor((fromMs - series.firstStartMs) / stepMs));
  const last = Math.min(n, Math.ceil((toMs - series.firstStartMs) / stepMs));
  if (last <= first) return null;
  const values =
    series.gramsPerKwh instanceof Float64Array
      ? series.gramsPerKwh.subarray(first, last)
      : Float64Array.from({ length: last - first }, (_, i) => series.gramsPerKwh[first + i]);
  return {
    firstStartMs: series.firstStartMs + first * stepMs,
    stepMinutes: series.stepMinutes,
    gramsPerKwh: values,
    quality,
  };
}
