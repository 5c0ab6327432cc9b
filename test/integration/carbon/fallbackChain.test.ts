import { ProviderError } from '../../../shared/errors';
import { ElectricityMapsProvider } from '../../../shared/carbon/electricityMaps';
import { type ChainFailure, FallbackChain } from '../../../shared/carbon/fallbackChain';
import type { CarbonProvider } from '../../../shared/carbon/provider';
import { ReadingCache } from '../../../shared/carbon/readingCache';
import { type LoopbackServer, startLoopbackServer } from '../../support/loopbackHttp';
import { testStorage, uniqueName } from '../../support/storage';

let nowMs = Date.parse('2025-06-01T12:20:00Z');
const now = () => new Date(nowMs);
let server: LoopbackServer;
let live: ElectricityMapsProvider;
let containerName: string;

const cache = () => new ReadingCache(testStorage().blobs.getContainerClient(containerName), now);
const emPoint = (datetime: string, carbonIntensity: number) => ({ zone: 'NL', carbonIntensity, datetime });

beforeEach(async () => {
  nowMs = Date.parse('2025-06-01T12:20:00Z');
  containerName = uniqueName('carbonchain');
  server = await startLoopbackServer();
  live = new ElectricityMapsProvider({
    baseUrl: server.baseUrl,
    token: 'tok',
    http: { timeoutMs: 1000, maxRetries: 0, now: () => nowMs },
  });
});
afterEach(async () => {
  await server.close();
});

test('live -> cached reading (with age, after a restart) -> annual average', async () => {
  server.route('GET', '/carbon-intensity/latest', { body: emPoint('2025-06-01T12:00:00.000Z', 321) });
  const first = await new FallbackChain({ live, cache: cache(), now }).latestWithTrail('NL');
  expect(first).toMatchObject({ servedBy: 'live', ageMinutes: 20, failures: [] });
  expect(first.value).toMatchObject({ gramsPerKwh: 321, source: 'measured', provider: 'electricitymaps' });

  // the API goes down and the host restarts: a new chain and a new cache instance
  server.route('GET', '/carbon-intensity/latest', { status: 500, body: 'outage' });
  nowMs += 90 * 60_000;
  const failures: ChainFailure[] = [];
  const restarted = new FallbackChain({ live, cache: cache(), now, onFailure: (f) => failures.push(f) });
  const second = await restarted.latestWithTrail('NL');
  expect(second.servedBy).toBe('cache');
  expect(second.ageMinutes).toBe(110);
  expect(second.value).toMatchObject({ gramsPerKwh: 321, source: 'cached', provider: 'electricitymaps' });
  expect(failures).toEqual([expect.objectContaining({ link: 'live', zone: 'NL', code: 'PROVIDER_HTTP' })]);

  // a day later the cached value is too old to stand for now
  nowMs += 24 * 60 * 60_000;
  const third = await restarted.latestWithTrail('NL');
  expect(third.servedBy).toBe('annual-average');
  expect(third.value.source).toBe('annual-average');
  expect(third.failures.map((f) => f.link)).toEqual(['live', 'cache']);
});

test('a zero reading from the live API is missing, so the chain falls back', async () => {
  server.route('GET', '/carbon-intensity/latest', { body: emPoint('2025-06-01T12:00:00.000Z', 0) });
  const outcome = await new FallbackChain({ live, cache: cache(), now }).latestWithTrail('NL');
  expect(outcome.servedBy).toBe('annual-average');
  expect(outcome.value.gramsPerKwh).toBeGreaterThan(0);
  expect(outcome.failures).toEqual([
    expect.objectContaining({ link: 'live', code: 'NO_DATA' }),
    expect.objectContaining({ link: 'cache', code: 'NO_DATA' }),
  ]);
});

test('forecasts fall back to the still-future part of the cached forecast', async () => {
  const forecast = Array.from({ length: 24 }, (_, h) => ({
    carbonIntensity: 300 + h,
    datetime: new Date(Date.parse('2025-06-01T12:00:00Z') + h * 3_600_000).toISOString(),
  }));
  server.route('GET', '/carbon-intensity/forecast', {
    body: { zone: 'NL', forecast, updatedAt: '2025-06-01T12:05:00.000Z' },
  });
  const chain = new FallbackChain({ live, cache: cache(), now });
  expect((await chain.forecastWithTrail('NL', 24)).servedBy).toBe('live');

  server.route('GET', '/carbon-intensity/forecast', { status: 503, body: 'down' });
  nowMs = Date.parse('2025-06-01T15:30:00Z');
  const outcome = await new FallbackChain({ live, cache: cache(), now }).forecastWithTrail('NL', 6);
  expect(outcome.servedBy).toBe('cache');
  expect(outcome.ageMinutes).toBe(205);
  expect(outcome.value.points.map((p) => [p.startsAt.slice(11, 16), p.gramsPerKwh, p.source])).toEqual([
    ['15:00', 303, 'cached'],
    ['16:00', 304, 'cached'],
    ['17:00', 305, 'cached'],
    ['18:00', 306, 'cached'],
    ['19:00', 307, 'cached'],
    ['20:00', 308, 'cached'],
    ['21:00', 309, 'cached'],
  ]);
});

test('history falls back to cached readings', async () => {
  server.route('GET', '/carbon-intensity/latest', { body: emPoint('2025-06-01T12:00:00.000Z', 280) });
  await new FallbackChain({ live, cache: cache(), now }).latest('NL');
  server.route('GET', '/carbon-intensity/history', { status: 502, body: 'bad gateway' });
  const outcome = await new FallbackChain({ live, cache: cache(), now }).historyWithTrail(
    'NL',
    '2025-06-01T11:00:00Z',
    '2025-06-01T13:00:00Z',
  );
  expect(outcome.servedBy).toBe('cache');
  expect(outcome.value.map((p) => [p.gramsPerKwh, p.source])).toEqual([[280, 'cached']]);
});

test('only when every link fails does the chain throw, listing each failure', async () => {
  server.route('GET', '/carbon-intensity/latest', { status: 401, body: 'Invalid auth-token' });
  const broken: CarbonProvider = {
    name: 'broken-average',
    signal: 'average',
    latest: async () => {
      throw new ProviderError('NO_DATA', 'no averages shipped', 'broken-average');
    },
    history: async () => [],
    forecast: async () => {
      throw new ProviderError('NO_DATA', 'no averages shipped', 'broken-average');
    },
  };
  const chain = new FallbackChain({ live, cache: cache(), annualAverage: broken, now });
  const error = (await chain.latest('NL').catch((e: unknown) => e)) as ProviderError;
  expect(error).toBeInstanceOf(ProviderError);
  expect(error.code).toBe('NO_DATA');
  expect(error.message).toMatch(
    /live: .*HTTP 401.*cache: .*no cached reading.*annual-average: .*no averages shipped/,
  );
});
