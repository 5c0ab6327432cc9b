import { ProviderError } from '../../../shared/errors';
import { ElectricityMapsProvider } from '../../../shared/carbon/electricityMaps';
import { latestForRegion } from '../../../shared/carbon/provider';
import { type LoopbackServer, startLoopbackServer } from '../../support/loopbackHttp';

const TOKEN = 'em-token-abc';
const NOW_MS = Date.parse('2025-03-04T13:41:00Z');

let server: LoopbackServer;
let provider: ElectricityMapsProvider;
let delaysMs: number[];
beforeEach(async () => {
  server = await startLoopbackServer();
  delaysMs = [];
  provider = new ElectricityMapsProvider({
    baseUrl: `${server.baseUrl}/v3`,
    token: TOKEN,
    http: {
      timeoutMs: 2000,
      maxRetries: 2,
      baseDelayMs: 10,
      random: () => 0.5,
      now: () => NOW_MS,
      onRetry: (d) => {
        if (d.kind === 'retry') delaysMs.push(d.delayMs);
      },
    },
  });
});
afterEach(async () => {
  await server.close();
});

const emPoint = (datetime: string, carbonIntensity: number | null) => ({
  zone: 'DE',
  carbonIntensity,
  datetime,
  updatedAt: '2025-03-04T13:41:12.412Z',
  createdAt: '2025-03-01T13:47:05.771Z',
  emissionFactorType: 'lifecycle',
  isEstimated: false,
  estimationMethod: null,
});

test('latest sends auth-token and labels the point', async () => {
  server.route('GET', '/v3/carbon-intensity/latest', { body: emPoint('2025-03-04T13:00:00.000Z', 302) });
  const point = await provider.latest('DE');
  expect(point).toEqual({
    startsAt: '2025-03-04T13:00:00.000Z',
    durationMinutes: 60,
    gramsPerKwh: 302,
    zone: 'DE',
    signal: 'average',
    provider: 'electricitymaps',
    source: 'measured',
  });
  const [request] = server.requests;
  expect(request.headers['auth-token']).toBe(TOKEN);
  expect(request.query.get('zone')).toBe('DE');
});

test('region helper resolves westeurope to zone NL', async () => {
  server.route('GET', '/v3/carbon-intensity/latest', (req) => ({
    body: { ...emPoint('2025-03-04T13:00:00.000Z', 250), zone: req.query.get('zone') },
  }));
  const point = await latestForRegion(provider, 'westeurope');
  expect(point.zone).toBe('NL');
  expect(server.requests[0].query.get('zone')).toBe('NL');
});

test.each([0, -5, null])('an intensity of %p is missing (NO_DATA), never clean', async (value) => {
  server.route('GET', '/v3/carbon-intensity/latest', { body: emPoint('2025-03-04T13:00:00.000Z', value) });
  const error = await provider.latest('DE').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ProviderError);
  expect((error as ProviderError).code).toBe('NO_DATA');
});

test('recent history uses /history and drops zero hours', async () => {
  server.route('GET', '/v3/carbon-intensity/history', {
    body: {
      zone: 'DE',
      history: [
        emPoint('2025-03-04T10:00:00.000Z', 318),
        emPoint('2025-03-04T11:00:00.000Z', 0),
        emPoint('2025-03-04T12:00:00.000Z', 301),
        emPoint('2025-03-04T13:00:00.000Z', 290),
      ],
    },
  });
  const points = await provider.history('DE', '2025-03-04T10:00:00Z', '2025-03-04T13:00:00Z');
  expect(points.map((p) => [p.startsAt, p.gramsPerKwh])).toEqual([
    ['2025-03-04T10:00:00.000Z', 318],
    ['2025-03-04T12:00:00.000Z', 301],
  ]);
});

test('older history uses /past-range in chunks of at most 10 days', async () => {
  server.route('GET', '/v3/carbon-intensity/past-range', (req) => {
    const start = Date.parse(req.query.get('start') ?? '');
    return { body: { zone: 'DE', data: [emPoint(new Date(start).toISOString(), 400)] } };
  });
  const points = await provider.history('DE', '2025-01-01T00:00:00Z', '2025-01-25T00:00:00Z');
  const calls = server.requestsTo('/v3/carbon-intensity/past-range');
  expect(calls.map((c) => [c.query.get('start'), c.query.get('end')])).toEqual([
    ['2025-01-01T00:00:00.000Z', '2025-01-11T00:00:00.000Z'],
    ['2025-01-11T00:00:00.000Z', '2025-01-21T00:00:00.000Z'],
    ['2025-01-21T00:00:00.000Z', '2025-01-25T00:00:00.000Z'],
  ]);
  expect(points).toHaveLength(3);
});

test('forecast asks for a supported horizon and trims to the requested one', async () => {
  const forecast = Array.from({ length: 24 }, (_, h) => ({
    carbonIntensity: h === 3 ? 0 : 300 - h,
    datetime: new Date(Date.parse('2025-03-04T13:00:00Z') + h * 3_600_000).toISOString(),
  }));
  server.route('GET', '/v3/carbon-intensity/forecast', {
    body: { zone: 'DE', forecast, updatedAt: '2025-03-04T13:30:00.000Z' },
  });
  const result = await provider.forecast('DE', 8);
  expect(server.requests[0].query.get('horizonHours')).toBe('24');
  expect(result.quality).toBe('provider');
  expect(result.generatedAt).toBe('2025-03-04T13:30:00.000Z');
  // 13:00 .. 20:00 is 8 hours; the zero at 16:00 is dropped
  expect(result.points.map((p) => p.startsAt.slice(11, 13))).toEqual([
    '13',
    '14',
    '15',
    '17',
    '18',
    '19',
    '20',
  ]);
  expect(result.points.every((p) => p.source === 'forecast')).toBe(true);
});

test('forecast refused for the plan is PROVIDER_UNAUTHORIZED and never leaks the token', async () => {
  server.route('GET', '/v3/carbon-intensity/forecast', {
    status: 401,
    body: { status: 'error', message: `Token ${TOKEN} unauthorized for zoneKey DE` },
  });
  const error = (await provider.forecast('DE', 24).catch((e: unknown) => e)) as ProviderError;
  expect(error.code).toBe('PROVIDER_UNAUTHORIZED');
  expect(error.message).not.toContain(TOKEN);
});

test('429 with Retry-After, then success', async () => {
  server.script('GET', '/v3/carbon-intensity/latest', [
    { status: 429, headers: { 'retry-after': '0.03' }, body: { message: 'Too many requests' } },
    { body: emPoint('2025-03-04T13:00:00.000Z', 280) },
  ]);
  expect((await provider.latest('DE')).gramsPerKwh).toBe(280);
  expect(delaysMs).toEqual([30]);
});

test('a body missing carbonIntensity is PROVIDER_RESPONSE_INVALID', async () => {
  server.route('GET', '/v3/carbon-intensity/latest', {
    body: { zone: 'DE', datetime: '2025-03-04T13:00:00Z' },
  });
  const error = (await provider.latest('DE').catch((e: unknown) => e)) as ProviderError;
  expect(error.code).toBe('PROVIDER_RESPONSE_INVALID');
  expect(error.message).toMatch(/carbonIntensity/);
});
