import {
  findAzureRegion,
  regionSatisfiesResidency,
  type ResidencyRule,
} from '../../../shared/carbon/azureRegions';
import { loadTraceSeries, type TraceSeries } from '../../../shared/carbon/traceData';
import type { Forecast } from '../../../shared/carbon/types';
import { sliceSeries, type IntensitySeries } from '../../../shared/policy/intensitySeries';
import {
  chooseWindow,
  NoAllowedRegionError,
  type RegionCandidate,
} from '../../../shared/policy/windowChoice';
import { mulberry32 } from '../../../shared/random';

/**
 * The window search against brute force on the real bundled 2022 traces: for random region subsets,
 * residency rules, durations (15 min–6 h), deadlines (1–72 h) and forecast horizons (24–72 h, so some
 * deadlines lie beyond the horizon), the chosen window must equal the minimum over EVERY whole-minute
 * start. All breakpoints of the objective are whole minutes here (hourly data, whole-minute inputs),
 * so the per-minute scan is the exact continuous-time optimum, computed without prefix sums.
 */
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const YEAR_START = Date.UTC(2022, 0, 1);
const YEAR_END = Date.UTC(2023, 0, 1);
const POOL = [
  'westeurope',
  'swedencentral',
  'francecentral',
  'germanywestcentral',
  'norwayeast',
  'spaincentral',
  'uksouth',
  'eastus',
  'westus',
];
const RULES: ResidencyRule[] = ['EU', 'EEA', 'EUROPE', 'ANY', 'US'];
const CASES = 400;

function traceOf(region: string): TraceSeries {
  const zone = findAzureRegion(region)?.traceZone;
  if (!zone) throw new Error(`no trace zone for ${region}`);
  return loadTraceSeries(zone);
}

/** Mean over [fromMs, toMs) by walking the slots one by one (independent of the prefix sums). */
function directMean(series: IntensitySeries, fromMs: number, toMs: number): number {
  const stepMs = series.stepMinutes * MINUTE;
  let sum = 0;
  for (let t = fromMs; t < toMs;) {
    const i = Math.floor((t - series.firstStartMs) / stepMs);
    const end = Math.min(series.firstStartMs + (i + 1) * stepMs, toMs);
    sum += series.gramsPerKwh[i] * (end - t);
    t = end;
  }
  return sum / (toMs - fromMs);
}

function asForecast(region: string, series: IntensitySeries): Forecast {
  return {
    zone: region,
    generatedAt: new Date(series.firstStartMs).toISOString(),
    quality: 'perfect',
    points: Array.from(series.gramsPerKwh, (gramsPerKwh, i) => ({
      startsAt: new Date(series.firstStartMs + i * series.stepMinutes * MINUTE).toISOString(),
      durationMinutes: series.stepMinutes,
      gramsPerKwh,
      zone: region,
      signal: 'average' as const,
      provider: 'trace',
      source: 'forecast' as const,
    })),
  };
}

describe('chooseWindow on real traces vs brute force', () => {
  it(`matches the per-minute brute-force minimum in ${CASES} random cases, never late, never outside residency`, () => {
    const random = mulberry32(20221);
    const int = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));
    const stats = { windows: 0, startNow: 0, clamped: 0, refused: 0, spatialMoves: 0 };
    let chooseMs = 0;

    for (let n = 0; n < CASES; n++) {
      const subset = POOL.filter(() => random() < 0.5);
      if (subset.length === 0) subset.push(POOL[int(0, POOL.length - 1)]);
      const residency = RULES[int(0, RULES.length - 1)];
      const durationMinutes = int(15, 360);
      const earliestMs = YEAR_START + int(0, (YEAR_END - YEAR_START) / MINUTE - 80 * 60) * MINUTE;
      const deadlineMs = earliestMs + int(60, 72 * 60) * MINUTE;
      const horizonHours = int(24, 72);
      const issuedMs = Math.floor(earliestMs / HOUR) * HOUR;
      const forecasts = new Map<string, IntensitySeries>();
      const candidates: RegionCandidate[] = subset.map((region, i) => {
        const series = sliceSeries(traceOf(region), issuedMs, issuedMs + horizonHours * HOUR, 'perfect');
        if (!series) throw new Error('trace slice expected');
        forecasts.set(region, series);
        // Both input forms: ready series (replay path) and ISO points (provider path).
        return { region, forecast: i % 2 === 0 ? series : asForecast(region, series) };
      });
      const req = {
        candidates,
        homeRegion: subset[0],
        residency,
        durationMinutes,
        earliestStart: new Date(earliestMs).toISOString(),
        deadline: new Date(deadlineMs).toISOString(),
      };
      const allowed = subset.filter((r) => regionSatisfiesResidency(r, residency));
      if (allowed.length === 0) {
        expect(() => chooseWindow(req)).toThrow(NoAllowedRegionError);
        stats.refused++;
        continue;
      }

      let brute: { region: string; startMs: number; mean: number } | null = null;
      for (const region of allowed) {
        const series = forecasts.get(region) as IntensitySeries;
        const horizonEndMs = series.firstStartMs + series.gramsPerKwh.length * HOUR;
        const lastStartMs = Math.min(deadlineMs, horizonEndMs) - durationMinutes * MINUTE;
        for (let s = earliestMs; s <= lastStartMs; s += MINUTE) {
          const mean = directMean(series, s, s + durationMinutes * MINUTE);
          if (!brute || mean < brute.mean) brute = { region, startMs: s, mean };
        }
      }

      const started = performance.now();
      const choice = chooseWindow(req);
      chooseMs += performance.now() - started;

      expect(allowed).toContain(choice.region);
      expect(Date.parse(choice.startAt)).toBeGreaterThanOrEqual(earliestMs);
      if (!brute) {
        // Only possible when the job is longer than the deadline allows.
        expect(choice).toMatchObject({ kind: 'startNow', reason: 'deadline-too-close' });
        expect(Date.parse(choice.startAt)).toBe(earliestMs);
        stats.startNow++;
        continue;
      }
      expect(choice.kind).toBe('window');
      if (choice.kind !== 'window') continue;
      expect(Date.parse(choice.endAt)).toBeLessThanOrEqual(deadlineMs);
      expect(Date.parse(choice.endAt) - Date.parse(choice.startAt)).toBe(durationMinutes * MINUTE);
      expect(Math.abs(choice.expectedGramsPerKwh - brute.mean)).toBeLessThan(1e-6);
      // The reported number is what the chosen window really averages.
      const chosenSeries = forecasts.get(choice.region) as IntensitySeries;
      const recomputed = directMean(chosenSeries, Date.parse(choice.startAt), Date.parse(choice.endAt));
      expect(Math.abs(recomputed - choice.expectedGramsPerKwh)).toBeLessThan(1e-6);
      const horizonEndMs = issuedMs + horizonHours * HOUR;
      expect(choice.clampedToHorizon).toBe(deadlineMs > horizonEndMs);
      stats.windows++;
      if (choice.clampedToHorizon) stats.clamped++;
      if (choice.region !== subset[0]) stats.spatialMoves++;
    }

    process.stdout.write(
      `window choice vs brute force: ${JSON.stringify(stats)}; ` +
        `${(chooseMs / (stats.windows + stats.startNow)).toFixed(3)} ms per chooseWindow call\n`,
    );
    // The random cases must actually exercise every path.
    expect(stats.windows).toBeGreaterThan(CASES / 2);
    expect(stats.startNow).toBeGreaterThan(0);
    expect(stats.clamped).toBeGreaterThan(0);
    expect(stats.refused).toBeGreaterThan(0);
    expect(stats.spatialMoves).toBeGreaterThan(0);
  });
});
