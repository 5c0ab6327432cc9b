import { CarbonAwareSdkProvider } from '../../../shared/carbon/carbonAwareSdk';
import { forecastForRegion, latestForRegion } from '../../../shared/carbon/provider';
import { type LoopbackServer, startLoopbackServer } from '../../support/loopbackHttp';

const NOW_MS = Date.parse('2025-03-04T13:55:02Z');
let server: LoopbackServer;
let provider: CarbonAwareSdkProvider;
beforeEach(async () => {
  server = await startLoopbackServer();
  provider = new CarbonAwareSdkProvider({
    baseUrl: server.baseUrl,
    http: { timeoutMs: 2000, maxRetries: 0, now: () => NOW_MS },
  });
});
afterEach(async () => {
  await server.close();
});

test('latestMany sends repeated location= parameters and keeps the newest usable point per location', async () => {
  server.route('GET', '/emissions/bylocations', {
    body: [
      { location: 'eastus', time: '2025-03-04T12:00:00+00:00', rating: 412.0, duration: '01:00:00' },
      { location: 'eastus', time: '2025-03-04T13:00:00+00:00', rating: 405.5, duration: '01:00:00' },
      { location: 'westus', time: '2025-03-04T12:00:00+00:00', rating: 250, duration: '01:00:00' },
      { location: 'westus', time: '2025-03-04T13:00:00+00:00', rating: 0, duration: '01:00:00' },
    ],
  });
  const latest = await provider.latestMany(['eastus', 'westus']);
  const request = server.requests[0];
  expect(request.query.getAll('location')).toEqual(['eastus', 'westus']);
  expect(request.query.has('locations')).toBe(false);
  expect(request.query.get('toTime')).toBe('2025-03-04T13:55:02.000Z');
  expect(latest.get('eastus')).toMatchObject({
    gramsPerKwh: 405.5,
    startsAt: '2025-03-04T13:00:00.000Z',
    durationMinutes: 60,
  });
  // the zero at 13:00 is missing data, so westus keeps its 12:00 value
  expect(latest.get('westus')).toMatchObject({ gramsPerKwh: 250, startsAt: '2025-03-04T12:00:00.000Z' });
});

test('region helper uses the Azure region name as the SDK location', async () => {
  server.route('GET', '/emissions/bylocations', {
    body: [
      { location: 'swedencentral', time: '2025-03-04T13:00:00+00:00', rating: 21, duration: '00:30:00' },
    ],
  });
  const point = await latestForRegion(provider, 'swedencentral');
  expect(point).toMatchObject({
    zone: 'swedencentral',
    gramsPerKwh: 21,
    durationMinutes: 30,
    source: 'measured',
  });
});

test('204 No Content is NO_DATA', async () => {
  server.route('GET', '/emissions/bylocations', { status: 204 });
  await expect(provider.latest('eastus')).rejects.toMatchObject({ code: 'NO_DATA' });
});

test('forecasts/current returns the forecastData points', async () => {
  server.route('GET', '/emissions/forecasts/current', {
    body: [
      {
        generatedAt: '2025-03-04T13:52:10+00:00',
        requestedAt: '2025-03-04T13:55:02+00:00',
        location: 'westeurope',
        dataStartAt: '2025-03-04T14:00:00+00:00',
        dataEndAt: '2025-03-05T06:00:00+00:00',
        windowSize: 60,
        optimalDataPoints: [
          { location: 'westeurope', timestamp: '2025-03-04T15:00:00+00:00', duration: 60, value: 300 },
        ],
        forecastData: [
          { location: 'westeurope', timestamp: '2025-03-04T14:00:00+00:00', duration: 60, value: 318.0 },
          { location: 'westeurope', timestamp: '2025-03-04T15:00:00+00:00', duration: 60, value: 300 },
          { location: 'westeurope', timestamp: '2025-03-05T14:00:00+00:00', duration: 60, value: 250 },
        ],
      },
    ],
  });
  const forecast = await forecastForRegion(provider, 'westeurope', 12);
  expect(server.requests[0].query.getAll('location')).toEqual(['westeurope']);
  expect(forecast.generatedAt).toBe('2025-03-04T13:52:10.000Z');
  expect(forecast.points.map((p) => p.gramsPerKwh)).toEqual([318, 300]);
  expect(forecast.points[0]).toMatchObject({
    source: 'forecast',
    signal: 'average',
    provider: 'carbonawaresdk',
  });
});

test('400 from the SDK is PROVIDER_HTTP with the status; a bad duration is invalid', async () => {
  server.route('GET', '/emissions/forecasts/current', {
    status: 400,
    body: { title: 'ArgumentException', detail: 'dataStartAt must be within the forecast' },
  });
  await expect(provider.forecast('westeurope', 24)).rejects.toMatchObject({
    code: 'PROVIDER_HTTP',
    statusCode: 400,
  });

  server.route('GET', '/emissions/bylocations', {
    body: [{ location: 'eastus', time: '2025-03-04T13:00:00+00:00', rating: 400, duration: 'one hour' }],
  });
  await expect(provider.latest('eastus')).rejects.toMatchObject({ code: 'PROVIDER_RESPONSE_INVALID' });
});
