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

/*
 * Samples from the SDK itself, Green-Software-Foundation/carbon-aware-sdk @ e6de58da895e5936b43ee66dbce925345bd88d02:
 * - FORECAST_DOC_SAMPLE: casdk-docs/docs/tutorial-basics/carbon-aware-webapi.md, "GET emissions/forecasts/current"
 *   (its `...` between the first and the last data point left out).
 * - WattTime behind the SDK: src/CarbonAware.DataSources/CarbonAware.DataSources.WattTime/src/WattTimeDataSource.cs,
 *   ConvertToEmissionsData: `Location = gridEmissionDataPoints.Meta.Region`, and the duration is the spacing of the
 *   first two points, `TimeSpan.Zero` when there is only one.
 */
const FORECAST_DOC_SAMPLE = [
  {
    requestedAt: '2022-07-19T13:37:49+00:00',
    generatedAt: '2022-07-19T13:35:00+00:00',
    location: 'northeurope',
    dataStartAt: '2022-07-19T14:00:00Z',
    dataEndAt: '2022-07-20T04:38:00Z',
    windowSize: 10,
    optimalDataPoint: {
      location: 'IE',
      timestamp: '2022-07-19T18:45:00+00:00',
      duration: 10,
      value: 448.4451043375,
    },
    forecastData: [
      { location: 'IE', timestamp: '2022-07-19T14:00:00+00:00', duration: 10, value: 532.02293146 },
      { location: 'IE', timestamp: '2022-07-20T04:25:00+00:00', duration: 10, value: 535.7318741001667 },
    ],
  },
];

describe('the SDK’s documented and source-derived answers', () => {
  const SAMPLE_NOW_MS = Date.parse('2022-07-19T13:37:49Z');
  let warnings: string[];
  let sdk: CarbonAwareSdkProvider;
  beforeEach(() => {
    warnings = [];
    sdk = new CarbonAwareSdkProvider({
      baseUrl: server.baseUrl,
      http: { timeoutMs: 2000, maxRetries: 0, now: () => SAMPLE_NOW_MS },
      onWarning: (m) => warnings.push(m),
    });
  });

  test('docs forecast sample: points keep the region asked; an upstream name (IE) means marginal', async () => {
    server.route('GET', '/emissions/forecasts/current', { body: FORECAST_DOC_SAMPLE });
    const forecast = await forecastForRegion(sdk, 'northeurope', 24);
    expect(forecast.zone).toBe('northeurope');
    expect(forecast.generatedAt).toBe('2022-07-19T13:35:00.000Z');
    expect(forecast.points.map((p) => [p.zone, p.startsAt, p.durationMinutes, p.signal])).toEqual([
      ['northeurope', '2022-07-19T14:00:00.000Z', 10, 'marginal'],
      ['northeurope', '2022-07-20T04:25:00.000Z', 10, 'marginal'],
    ]);
  });

  test('WattTime behind the SDK: CAISO_NORTH answers for westus and is mapped back, marginal', async () => {
    server.route('GET', '/emissions/bylocations', {
      body: [
        { location: 'CAISO_NORTH', time: '2022-07-19T13:30:00+00:00', rating: 301.2, duration: '00:05:00' },
        { location: 'CAISO_NORTH', time: '2022-07-19T13:35:00+00:00', rating: 296.4, duration: '00:05:00' },
      ],
    });
    const point = await latestForRegion(sdk, 'westus');
    expect(point).toMatchObject({
      zone: 'westus',
      gramsPerKwh: 296.4,
      signal: 'marginal',
      durationMinutes: 5,
    });
  });

  test('a single WattTime point (duration 00:00:00) is dropped with a warning, not a rejected response', async () => {
    server.route('GET', '/emissions/bylocations', {
      body: [
        { location: 'CAISO_NORTH', time: '2022-07-19T13:35:00+00:00', rating: 296.4, duration: '00:00:00' },
      ],
    });
    await expect(latestForRegion(sdk, 'westus')).rejects.toMatchObject({ code: 'NO_DATA' });
    expect(warnings).toEqual([expect.stringMatching(/dropped 1 zero-length point\(s\) for westus/)]);
  });

  test('several locations renamed upstream are asked one by one so each answer maps to its region', async () => {
    server.route('GET', '/emissions/bylocations', (req) => {
      const asked = req.query.getAll('location');
      const upstream: Record<string, string> = { eastus: 'PJM_DC', westus: 'CAISO_NORTH' };
      return {
        body: asked.map((location) => ({
          location: upstream[location],
          time: '2022-07-19T13:00:00+00:00',
          rating: location === 'westus' ? 300 : 400,
          duration: '01:00:00',
        })),
      };
    });
    const latest = await sdk.latestMany(['eastus', 'westus']);
    expect(server.requestsTo('/emissions/bylocations').map((r) => r.query.getAll('location'))).toEqual([
      ['eastus', 'westus'],
      ['eastus'],
      ['westus'],
    ]);
    expect(latest.get('eastus')).toMatchObject({ zone: 'eastus', gramsPerKwh: 400, signal: 'marginal' });
    expect(latest.get('westus')).toMatchObject({ zone: 'westus', gramsPerKwh: 300, signal: 'marginal' });
  });

  test('an answer for another Azure region is refused as a zone mismatch', async () => {
    server.route('GET', '/emissions/bylocations', {
      body: [
        { location: 'francecentral', time: '2022-07-19T13:00:00+00:00', rating: 50, duration: '01:00:00' },
      ],
    });
    await expect(latestForRegion(sdk, 'germanywestcentral')).rejects.toMatchObject({
      code: 'PROVIDER_RESPONSE_INVALID',
      details: expect.objectContaining({ rejection: 'zone-mismatch' }),
    });
  });
});
