import { ValidationError } from '../../../shared/errors';
import { forecastForRegion, latestForRegion } from '../../../shared/carbon/provider';
import { UkCarbonIntensityProvider } from '../../../shared/carbon/ukCarbonIntensity';
import { type LoopbackServer, startLoopbackServer } from '../../support/loopbackHttp';

const NOW_MS = Date.parse('2025-03-04T12:41:00Z');
let server: LoopbackServer;
let provider: UkCarbonIntensityProvider;
beforeEach(async () => {
  server = await startLoopbackServer();
  provider = new UkCarbonIntensityProvider({
    baseUrl: server.baseUrl,
    http: { timeoutMs: 2000, maxRetries: 0, now: () => NOW_MS },
  });
});
afterEach(async () => {
  await server.close();
});

const slot = (from: string, to: string, forecast: number | null, actual: number | null) => ({
  from,
  to,
  intensity: { forecast, actual, index: 'moderate' },
});

function halfHours(fromIso: string, count: number, value: (i: number) => number) {
  return Array.from({ length: count }, (_, i) => {
    const fromMs = Date.parse(fromIso) + i * 1_800_000;
    const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 16)}Z`;
    return { from: iso(fromMs), to: iso(fromMs + 1_800_000), value: value(i) };
  });
}

test('national latest prefers the actual and is half-hourly', async () => {
  server.route('GET', '/intensity', {
    body: { data: [slot('2025-03-04T12:30Z', '2025-03-04T13:00Z', 154, 149)] },
  });
  const point = await provider.latest('GB');
  expect(point).toEqual({
    startsAt: '2025-03-04T12:30:00.000Z',
    durationMinutes: 30,
    gramsPerKwh: 149,
    zone: 'GB',
    signal: 'average',
    provider: 'ukcarbonintensity',
    source: 'measured',
  });
});

test('national latest without an actual falls back to the slot forecast, labelled forecast', async () => {
  server.route('GET', '/intensity', {
    body: { data: [slot('2025-03-04T12:30Z', '2025-03-04T13:00Z', 154, null)] },
  });
  await expect(provider.latest('national')).resolves.toMatchObject({ gramsPerKwh: 154, source: 'forecast' });
});

test('a zero actual is missing, not clean: the forecast is used instead', async () => {
  server.route('GET', '/intensity', {
    body: { data: [slot('2025-03-04T12:30Z', '2025-03-04T13:00Z', 150, 0)] },
  });
  await expect(provider.latest('GB')).resolves.toMatchObject({ gramsPerKwh: 150, source: 'forecast' });
});

test('regional latest for uksouth asks region 13 (array-wrapped response)', async () => {
  server.route('GET', '/regional/regionid/13', {
    body: {
      data: [
        {
          regionid: 13,
          dnoregion: 'UKPN London',
          shortname: 'London',
          data: [
            {
              from: '2025-03-04T12:30Z',
              to: '2025-03-04T13:00Z',
              intensity: { forecast: 109, index: 'moderate' },
              generationmix: [{ fuel: 'gas', perc: 40 }],
            },
          ],
        },
      ],
    },
  });
  const point = await latestForRegion(provider, 'uksouth');
  expect(point).toMatchObject({ zone: '13', gramsPerKwh: 109, source: 'forecast', durationMinutes: 30 });
});

test('national forecast uses fw48h from the current half hour and trims to the horizon', async () => {
  const slots = halfHours('2025-03-04T12:30Z', 96, (i) => 200 - i);
  server.route('GET', '/intensity/2025-03-04T12:30Z/fw48h', {
    body: { data: slots.map((s) => slot(s.from, s.to, s.value, null)) },
  });
  const forecast = await provider.forecast('GB', 3);
  expect(forecast.points).toHaveLength(6);
  expect(forecast.points[0]).toMatchObject({
    startsAt: '2025-03-04T12:30:00.000Z',
    gramsPerKwh: 200,
    source: 'forecast',
  });
  expect(forecast.quality).toBe('provider');
});

test('regional forecast for ukwest asks region 7 (object-wrapped response)', async () => {
  const slots = halfHours('2025-03-04T12:30Z', 96, (i) => 100 + i);
  server.route('GET', '/regional/intensity/2025-03-04T12:30Z/fw48h/regionid/7', {
    body: {
      data: {
        regionid: 7,
        shortname: 'South Wales',
        data: slots.map((s) => ({ from: s.from, to: s.to, intensity: { forecast: s.value, index: 'low' } })),
      },
    },
  });
  const forecast = await forecastForRegion(provider, 'ukwest', 72);
  // the API publishes 48 h, so a 72 h request gets 96 half hours
  expect(forecast.points).toHaveLength(96);
  expect(forecast.region).toBe('ukwest');
});

test('history reads /intensity/{from}/{to} in 14-day chunks', async () => {
  server.route('GET', '/intensity/2025-01-01T00:00Z/2025-01-15T00:00Z', {
    body: { data: [slot('2025-01-01T00:00Z', '2025-01-01T00:30Z', 210, 205)] },
  });
  server.route('GET', '/intensity/2025-01-15T00:00Z/2025-01-20T00:00Z', {
    body: { data: [slot('2025-01-15T00:00Z', '2025-01-15T00:30Z', 190, 188)] },
  });
  const points = await provider.history('GB', '2025-01-01T00:00:00Z', '2025-01-20T00:00:00Z');
  expect(points.map((p) => p.gramsPerKwh)).toEqual([205, 188]);
});

test('zones outside Great Britain are rejected before any request', async () => {
  await expect(provider.latest('NL')).rejects.toBeInstanceOf(ValidationError);
  await expect(latestForRegion(provider, 'westeurope')).rejects.toThrow(/Great Britain only/);
  expect(server.requests).toHaveLength(0);
});

test('a response without data is PROVIDER_RESPONSE_INVALID', async () => {
  server.route('GET', '/intensity', {
    body: { error: { code: '400 Bad Request', message: 'Please enter a valid date' } },
  });
  await expect(provider.latest('GB')).rejects.toMatchObject({ code: 'PROVIDER_RESPONSE_INVALID' });
});
