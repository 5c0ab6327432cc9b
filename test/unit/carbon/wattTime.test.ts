import { ProviderError } from '../../../shared/errors';
import { forecastForRegion } from '../../../shared/carbon/provider';
import { LBS_PER_MWH_TO_GRAMS_PER_KWH, WattTimeProvider } from '../../../shared/carbon/wattTime';
import { type LoopbackServer, type RecordedRequest, startLoopbackServer } from '../../support/loopbackHttp';

const USER = 'green';
const PASSWORD = 'pa55-word!';
let nowMs = Date.parse('2025-03-04T13:07:00Z');

let server: LoopbackServer;
let provider: WattTimeProvider;
let issued: string[];
beforeEach(async () => {
  nowMs = Date.parse('2025-03-04T13:07:00Z');
  issued = [];
  server = await startLoopbackServer();
  server.route('GET', '/login', (req) => {
    const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    if (req.headers.authorization !== expected) return { status: 401, body: 'bad credentials' };
    const token = `jwt-${issued.length + 1}`;
    issued.push(token);
    return { body: { token } };
  });
  provider = new WattTimeProvider({
    baseUrl: server.baseUrl,
    username: USER,
    password: PASSWORD,
    http: { timeoutMs: 2000, maxRetries: 1, baseDelayMs: 10, now: () => nowMs },
  });
});
afterEach(async () => {
  await server.close();
});

const meta = (units = 'lbs_co2_per_mwh') => ({
  region: 'CAISO_NORTH',
  signal_type: 'co2_moer',
  units,
  data_point_period_seconds: 300,
  generated_at: '2025-03-04T13:05:00+00:00',
  model: { date: '2023-03-01' },
  warnings: [],
});

/** Accepts only the newest issued token, like a server that revoked the older ones. */
function bearerOnly(req: RecordedRequest): boolean {
  return req.headers.authorization === `Bearer ${issued[issued.length - 1]}`;
}

test('forecast: logs in with Basic auth, converts lbs/MWh to g/kWh and labels it marginal', async () => {
  server.route('GET', '/v3/forecast', (req) =>
    bearerOnly(req)
      ? {
          body: {
            data: [
              { point_time: '2025-03-04T13:05:00+00:00', value: 1000 },
              { point_time: '2025-03-04T13:10:00+00:00', value: 0 },
              { point_time: '2025-03-04T13:15:00+00:00', value: 905.1 },
            ],
            meta: meta(),
          },
        }
      : { status: 401, body: 'unauthorized' },
  );
  const forecast = await forecastForRegion(provider, 'westus', 24);
  const request = server.requestsTo('/v3/forecast')[0];
  expect(request.query.get('region')).toBe('CAISO_NORTH');
  expect(request.query.get('signal_type')).toBe('co2_moer');
  expect(request.query.get('horizon_hours')).toBe('24');
  expect(forecast.region).toBe('westus');
  expect(forecast.generatedAt).toBe('2025-03-04T13:05:00.000Z');
  expect(forecast.points.map((p) => p.gramsPerKwh)).toEqual([
    453.59237,
    905.1 * LBS_PER_MWH_TO_GRAMS_PER_KWH,
  ]);
  expect(forecast.points[0]).toMatchObject({
    signal: 'marginal',
    durationMinutes: 5,
    source: 'forecast',
    provider: 'watttime',
  });
});

test('the token is cached, renewed after ~30 min, and renewed again when refused', async () => {
  server.route('GET', '/v3/historical', (req) =>
    bearerOnly(req)
      ? { body: { data: [{ point_time: '2025-03-04T13:00:00+00:00', value: 800 }], meta: meta() } }
      : { status: 401, body: 'token expired' },
  );
  await provider.latest('CAISO_NORTH');
  await provider.latest('CAISO_NORTH');
  expect(provider.loginCount).toBe(1);

  nowMs += 31 * 60_000;
  await provider.latest('CAISO_NORTH');
  expect(provider.loginCount).toBe(2);

  issued.push('jwt-revoked-elsewhere'); // the server now only accepts a token we don't have
  server.route('GET', '/v3/historical', (req) =>
    req.headers.authorization === 'Bearer jwt-4'
      ? { body: { data: [{ point_time: '2025-03-04T13:35:00+00:00', value: 700 }], meta: meta() } }
      : { status: 401, body: 'token expired' },
  );
  const point = await provider.latest('CAISO_NORTH');
  expect(point.gramsPerKwh).toBeCloseTo(700 * LBS_PER_MWH_TO_GRAMS_PER_KWH, 9);
  expect(provider.loginCount).toBe(3);
});

test('concurrent calls share one login', async () => {
  server.route('GET', '/v3/historical', {
    body: { data: [{ point_time: '2025-03-04T13:00:00+00:00', value: 800 }], meta: meta() },
  });
  await Promise.all([provider.latest('A'), provider.latest('B'), provider.latest('C')]);
  expect(server.requestsTo('/login')).toHaveLength(1);
});

test('wrong credentials are PROVIDER_UNAUTHORIZED without the password in the message', async () => {
  const bad = new WattTimeProvider({
    baseUrl: server.baseUrl,
    username: USER,
    password: 'wrong-password-xyz',
    http: { timeoutMs: 2000, maxRetries: 0, now: () => nowMs },
  });
  const error = (await bad.latest('CAISO_NORTH').catch((e: unknown) => e)) as ProviderError;
  expect(error.code).toBe('PROVIDER_UNAUTHORIZED');
  expect(error.message).not.toContain('wrong-password-xyz');
  expect(JSON.stringify(error)).not.toContain(Buffer.from(`${USER}:wrong-password-xyz`).toString('base64'));
});

test('history asks /v3/historical with the range; percent units are rejected', async () => {
  server.route('GET', '/v3/historical', {
    body: { data: [{ point_time: '2025-03-01T00:00:00+00:00', value: 10 }], meta: meta('percent') },
  });
  const error = (await provider
    .history('CAISO_NORTH', '2025-03-01T00:00:00Z', '2025-03-02T00:00:00Z')
    .catch((e: unknown) => e)) as ProviderError;
  expect(error.code).toBe('PROVIDER_RESPONSE_INVALID');
  const request = server.requestsTo('/v3/historical')[0];
  expect(request.query.get('start')).toBe('2025-03-01T00:00:00.000Z');
  expect(request.query.get('end')).toBe('2025-03-02T00:00:00.000Z');
});

test('signal index returns the percentile', async () => {
  server.route('GET', '/v3/signal-index', {
    body: { data: [{ point_time: '2025-03-04T13:05:00+00:00', value: 23 }], meta: { ...meta('percentile') } },
  });
  await expect(provider.signalIndex('CAISO_NORTH')).resolves.toEqual({
    region: 'CAISO_NORTH',
    at: '2025-03-04T13:05:00.000Z',
    percentile: 23,
  });
});

test('500 then success on a data call', async () => {
  server.script('GET', '/v3/historical', [
    { status: 500, body: 'internal' },
    { body: { data: [{ point_time: '2025-03-04T13:00:00+00:00', value: 500 }], meta: meta() } },
  ]);
  expect((await provider.latest('CAISO_NORTH')).gramsPerKwh).toBeCloseTo(226.796185, 6);
  expect(server.requestsTo('/v3/historical')).toHaveLength(2);
});
