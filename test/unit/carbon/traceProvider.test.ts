import { ProviderError } from '../../../shared/errors';
import { forecastForRegion, latestForRegion } from '../../../shared/carbon/provider';
import { intensityAt, loadTraceSeries } from '../../../shared/carbon/traceData';
import {
  TraceProvider,
  type TraceProviderOptions,
  forecastErrorSigma,
} from '../../../shared/carbon/traceProvider';

const HOUR_MS = 3_600_000;
const provider = (overrides: Partial<TraceProviderOptions> = {}): TraceProvider =>
  new TraceProvider({
    year: 2022,
    forecastMode: 'realistic',
    seed: 42,
    now: () => new Date('2025-06-01T12:20:00Z'),
    ...overrides,
  });

test('now maps to the same hour-of-year in the trace year, with wall-clock timestamps', async () => {
  const point = await provider().latest('NL');
  expect(point).toEqual({
    startsAt: '2025-06-01T12:00:00.000Z',
    durationMinutes: 60,
    gramsPerKwh: intensityAt(loadTraceSeries('NL'), Date.parse('2022-06-01T12:00:00Z')),
    zone: 'NL',
    signal: 'average',
    provider: 'trace:em_NL_2022',
    source: 'trace',
  });
});

test('a leap-year 31 December replays 1 January of a plain trace year', () => {
  const p = provider();
  expect(new Date(p.traceTimeMs(Date.parse('2024-12-31T05:00:00Z'))).toISOString()).toBe(
    '2022-01-01T05:00:00.000Z',
  );
  expect(new Date(p.traceTimeMs(Date.parse('2024-03-01T00:00:00Z'))).toISOString()).toBe(
    '2022-03-02T00:00:00.000Z',
  );
});

test('regions map to their trace zone; sub-zones replay the national aggregate', async () => {
  const se = await latestForRegion(provider(), 'swedencentral');
  expect(se.provider).toBe('trace:em_SE_2022');
  expect((await provider().latest('SE-SE3')).gramsPerKwh).toBe(se.gramsPerKwh);
});

test('zones without a trace and years outside it are NO_DATA', async () => {
  await expect(latestForRegion(provider(), 'northeurope')).rejects.toMatchObject({ code: 'NO_DATA' });
  const error = await provider({ year: 2021 })
    .latest('NL')
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ProviderError);
  expect((error as ProviderError).message).toMatch(/covers 2022, not 2021/);
});

test('history replays consecutive hours', async () => {
  const points = await provider().history('DE', '2025-02-01T00:00:00Z', '2025-02-01T06:00:00Z');
  const de = loadTraceSeries('DE');
  expect(points.map((p) => p.gramsPerKwh)).toEqual(
    Array.from({ length: 6 }, (_, h) => intensityAt(de, Date.parse('2022-02-01T00:00:00Z') + h * HOUR_MS)),
  );
});

test('perfect forecasts are the future itself', async () => {
  const p = provider({ forecastMode: 'perfect' });
  const forecast = await forecastForRegion(p, 'germanywestcentral', 48);
  const truth = await p.history('DE', '2025-06-01T12:00:00Z', '2025-06-03T12:00:00Z');
  expect(forecast.quality).toBe('perfect');
  expect(forecast.points.map((x) => x.gramsPerKwh)).toEqual(truth.map((x) => x.gramsPerKwh));
  expect(forecast.points.map((x) => x.startsAt)).toEqual(truth.map((x) => x.startsAt));
});

test('realistic forecasts are deterministic per (seed, zone, issue hour) and differ from the future', async () => {
  const a = await provider().forecast('DE', 48);
  const again = await provider({ now: () => new Date('2025-06-01T12:59:00Z') }).forecast('DE', 48);
  const otherSeed = await provider({ seed: 7 }).forecast('DE', 48);
  const truth = await provider({ forecastMode: 'perfect' }).forecast('DE', 48);
  expect(a.quality).toBe('realistic-simulated');
  expect(again.points).toEqual(a.points);
  expect(otherSeed.points.map((p) => p.gramsPerKwh)).not.toEqual(a.points.map((p) => p.gramsPerKwh));
  expect(a.points.filter((p, i) => p.gramsPerKwh === truth.points[i].gramsPerKwh)).toHaveLength(0);
  expect(a.points.every((p) => p.gramsPerKwh > 0 && p.source === 'forecast')).toBe(true);
});

test('realistic error grows with lead time: ~3 % at 1 h, ~15-20 % at 48 h', async () => {
  expect(forecastErrorSigma(1)).toBeCloseTo(0.03, 5);
  expect(forecastErrorSigma(48)).toBeCloseTo(0.18, 5);
  const issues = 150;
  const absErr = new Float64Array(48);
  let now = Date.parse('2025-01-03T00:00:00Z');
  const clock = () => new Date(now);
  const realistic = provider({ now: clock });
  const perfect = provider({ forecastMode: 'perfect', now: clock });
  for (let i = 0; i < issues; i++, now += 13 * HOUR_MS) {
    const [f, t] = await Promise.all([realistic.forecast('GB', 48), perfect.forecast('GB', 48)]);
    f.points.forEach((p, k) => {
      absErr[k] += Math.abs(Math.log(p.gramsPerKwh / t.points[k].gramsPerKwh)) / issues;
    });
  }
  const mean = (from: number, to: number) => absErr.slice(from, to).reduce((s, v) => s + v, 0) / (to - from);
  const early = mean(0, 3);
  const late = mean(42, 48);
  // mean |N(0, sigma)| = 0.8 sigma
  expect(early).toBeGreaterThan(0.01);
  expect(early).toBeLessThan(0.05);
  expect(late).toBeGreaterThan(0.09);
  expect(late).toBeLessThan(0.22);
  expect(late / early).toBeGreaterThan(3);
});

test('forecast horizons outside 1..72 are rejected', async () => {
  await expect(provider().forecast('DE', 0)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  await expect(provider().forecast('DE', 73)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
});
