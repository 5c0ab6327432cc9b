import { derivePlausibleRanges } from '../../../shared/carbon/plausibleRangesBuild';
import RANGES from '../../../shared/carbon/plausibleRanges.json';
import {
  PHYSICAL_RANGE,
  checkForecast,
  checkReading,
  plausibleRange,
  rejectionOf,
} from '../../../shared/carbon/plausibility';
import type { Forecast, IntensityPoint } from '../../../shared/carbon/types';

const NOW_MS = Date.parse('2025-03-04T13:20:00Z');
const OPTIONS = { nowMs: NOW_MS, liveMaxAgeMinutes: 180, clockSkewMinutes: 5, maxGapMinutes: 180 };

const point = (
  startsAt: string,
  gramsPerKwh: number,
  overrides: Partial<IntensityPoint> = {},
): IntensityPoint => ({
  startsAt,
  durationMinutes: 60,
  gramsPerKwh,
  zone: 'DE',
  signal: 'average',
  provider: 'electricitymaps',
  source: 'measured',
  ...overrides,
});

const refusal = (run: () => unknown): string | undefined => {
  try {
    run();
  } catch (error) {
    return rejectionOf(error);
  }
  return undefined;
};

test('the committed ranges are what the bundled traces and annual averages give, each with its source', () => {
  expect(RANGES).toEqual(derivePlausibleRanges());
  expect(plausibleRange('DE', 'lifecycle-average').source).toMatch(
    /em_DE_2021-2024_hourly\.csv.*min 107\.06/,
  );
  expect(plausibleRange('germanywestcentral', 'lifecycle-average')).toEqual(
    plausibleRange('DE', 'lifecycle-average'),
  );
  expect(plausibleRange('IE', 'lifecycle-average').source).toMatch(/annual average co2js/);
});

test('marginal and direct values get the physical range only', () => {
  expect(plausibleRange('DE', 'marginal')).toBe(PHYSICAL_RANGE);
  expect(plausibleRange('GB', 'direct-average')).toBe(PHYSICAL_RANGE);
});

test('a reading for Germany below its record low is implausible although physically possible', () => {
  expect(refusal(() => checkReading(point('2025-03-04T13:00:00Z', 20), 'DE', OPTIONS))).toBe(
    'implausible-value',
  );
  expect(checkReading(point('2025-03-04T13:00:00Z', 120), 'DE', OPTIONS)).toBe(20);
  // the same 20 g is fine for Sweden
  expect(checkReading(point('2025-03-04T13:00:00Z', 20, { zone: 'SE-SE3' }), 'SE-SE3', OPTIONS)).toBe(20);
});

test('clock skew within the allowance is accepted, beyond it refused; the live limit is inclusive', () => {
  expect(checkReading(point('2025-03-04T13:24:00Z', 300), 'DE', OPTIONS)).toBe(0);
  expect(refusal(() => checkReading(point('2025-03-04T13:30:00Z', 300), 'DE', OPTIONS))).toBe(
    'from-the-future',
  );
  expect(checkReading(point('2025-03-04T10:20:00Z', 300), 'DE', OPTIONS)).toBe(180);
  expect(refusal(() => checkReading(point('2025-03-04T10:19:00Z', 300), 'DE', OPTIONS))).toBe('stale');
});

const forecast = (points: IntensityPoint[], generatedAt = '2025-03-04T13:00:00Z'): Forecast => ({
  zone: 'DE',
  generatedAt,
  points: points.map((p) => ({ ...p, source: 'forecast' })),
  quality: 'provider',
});

test('forecast points are sorted, one per slot, short gaps interpolated linearly, long gaps end it', () => {
  const checked = checkForecast(
    forecast([
      point('2025-03-04T15:00:00Z', 300),
      point('2025-03-04T13:00:00Z', 200),
      point('2025-03-04T13:00:00Z', 999),
      point('2025-03-04T14:00:00Z', 210),
      // 16:00 and 17:00 missing: filled
      point('2025-03-04T18:00:00Z', 240),
      // 19:00 – 22:00 missing (4 h > 180 min): the forecast ends at 19:00
      point('2025-03-04T23:00:00Z', 100),
    ]),
    'DE',
    OPTIONS,
  );
  expect(checked.forecast.points.map((p) => [p.startsAt.slice(11, 16), p.gramsPerKwh, p.source])).toEqual([
    ['13:00', 200, 'forecast'],
    ['14:00', 210, 'forecast'],
    ['15:00', 300, 'forecast'],
    ['16:00', 280, 'interpolated'],
    ['17:00', 260, 'interpolated'],
    ['18:00', 240, 'forecast'],
  ]);
  expect(checked.repair).toEqual({
    duplicatesRemoved: 1,
    filled: ['2025-03-04T16:00:00.000Z', '2025-03-04T17:00:00.000Z'],
    truncatedAt: '2025-03-04T19:00:00.000Z',
  });
});

test('a forecast that does not cover now is refused, one that starts at the next slot is fine', () => {
  const later = [point('2025-03-04T16:00:00Z', 300), point('2025-03-04T17:00:00Z', 300)];
  expect(refusal(() => checkForecast(forecast(later), 'DE', OPTIONS))).toBe('forecast-not-current');
  const next = [point('2025-03-04T14:00:00Z', 300), point('2025-03-04T15:00:00Z', 300)];
  expect(checkForecast(forecast(next), 'DE', OPTIONS).forecast.points).toHaveLength(2);
});

test('one implausible point refuses the whole forecast', () => {
  const points = [point('2025-03-04T13:00:00Z', 300), point('2025-03-04T14:00:00Z', 1e12)];
  expect(refusal(() => checkForecast(forecast(points), 'DE', OPTIONS))).toBe('implausible-value');
});
