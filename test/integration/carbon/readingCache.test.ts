import {
  ContainerClient,
  type RequestPolicy,
  type RequestPolicyFactory,
  type StorageSharedKeyCredential,
  newPipeline,
} from '@azure/storage-blob';
import { ValidationError } from '../../../shared/errors';
import { ReadingCache } from '../../../shared/carbon/readingCache';
import type { Forecast, IntensityPoint } from '../../../shared/carbon/types';
import { testStorage, uniqueName } from '../../support/storage';

const point = (startsAt: string, gramsPerKwh: number, zone = 'NL'): IntensityPoint => ({
  startsAt,
  durationMinutes: 60,
  gramsPerKwh,
  zone,
  signal: 'average',
  provider: 'electricitymaps',
  source: 'measured',
});

function freshCache() {
  const container = testStorage().blobs.getContainerClient(uniqueName('carbon'));
  return { container, make: () => new ReadingCache(container, () => new Date('2025-06-02T00:00:00Z')) };
}

test('readings and forecasts survive a new instance', async () => {
  const { make } = freshCache();
  const writer = make();
  await writer.recordReading(point('2025-06-01T10:00:00.000Z', 300));
  await writer.recordReading(point('2025-06-01T11:00:00.000Z', 310));
  await writer.recordReading(point('2025-06-02T00:00:00.000Z', 250));
  const forecast: Forecast = {
    zone: 'NL',
    generatedAt: '2025-06-01T11:30:00.000Z',
    points: [{ ...point('2025-06-01T12:00:00.000Z', 290), source: 'forecast' }],
    quality: 'provider',
  };
  await writer.saveForecast(forecast);

  const reader = make();
  expect((await reader.lastReading('NL'))?.point.gramsPerKwh).toBe(250);
  const history = await reader.readings('NL', '2025-06-01T00:00:00Z', '2025-06-03T00:00:00Z');
  expect(history.map((p) => p.gramsPerKwh)).toEqual([300, 310, 250]);
  expect(
    (await reader.readings('NL', '2025-06-01T11:00:00Z', '2025-06-01T12:00:00Z')).map((p) => p.gramsPerKwh),
  ).toEqual([310]);
  expect((await reader.latestForecast('NL'))?.forecast).toEqual(forecast);
  expect(await reader.lastReading('DE')).toBeUndefined();
  expect(await reader.latestForecast('DE')).toBeUndefined();
});

test('an older reading or forecast never replaces a newer one', async () => {
  const { make } = freshCache();
  const cache = make();
  await cache.recordReading(point('2025-06-01T12:00:00.000Z', 300));
  await cache.recordReading(point('2025-06-01T09:00:00.000Z', 100));
  expect((await cache.lastReading('NL'))?.point.startsAt).toBe('2025-06-01T12:00:00.000Z');
  const base = { zone: 'NL', points: [], quality: 'provider' as const };
  await cache.saveForecast({ ...base, generatedAt: '2025-06-01T12:00:00.000Z' });
  await cache.saveForecast({ ...base, generatedAt: '2025-06-01T06:00:00.000Z' });
  expect((await cache.latestForecast('NL'))?.forecast.generatedAt).toBe('2025-06-01T12:00:00.000Z');
});

test('concurrent pollers lose no reading and latest ends at the newest (ETag races)', async () => {
  const { make } = freshCache();
  const hours = Array.from({ length: 12 }, (_, h) =>
    point(`2025-06-01T${String(h).padStart(2, '0')}:00:00.000Z`, 200 + h),
  );
  // separate instances, like separate function hosts
  await Promise.all(hours.map((p) => make().recordReading(p)));
  const cache = make();
  expect(
    (await cache.readings('NL', '2025-06-01T00:00:00Z', '2025-06-02T00:00:00Z')).map((p) => p.gramsPerKwh),
  ).toEqual(hours.map((p) => p.gramsPerKwh));
  expect((await cache.lastReading('NL'))?.point.gramsPerKwh).toBe(211);
});

test('corrupt blobs are ValidationErrors naming the blob and line; bad writes are refused', async () => {
  const { container, make } = freshCache();
  const cache = make();
  await cache.recordReading(point('2025-06-01T10:00:00.000Z', 300));
  const day = container.getAppendBlobClient('readings/NL/2025-06-01.jsonl');
  const bad = Buffer.from('{"startsAt":"2025-06-01T11:00:00.000Z","gramsPerKwh":0}\n');
  await day.appendBlock(bad, bad.length);
  await expect(cache.readings('NL', '2025-06-01T00:00:00Z', '2025-06-02T00:00:00Z')).rejects.toThrow(
    /carbon\/readings\/NL\/2025-06-01.jsonl line 2/,
  );
  await container.getBlockBlobClient('forecasts/NL/latest.json').upload('not json', 8);
  await expect(cache.latestForecast('NL')).rejects.toBeInstanceOf(ValidationError);
  await expect(cache.recordReading(point('2025-06-01T12:00:00.000Z', 0))).rejects.toBeInstanceOf(
    ValidationError,
  );
});

test('a stale writer that loses the ETag race re-reads instead of overwriting a newer value', async () => {
  const { container, make } = freshCache();
  await container.createIfNotExists();
  const competitor = make();
  await competitor.recordReading(point('2025-06-01T08:00:00.000Z', 180));

  // Just before the slow writer's conditional PUT of latest.json, another host stores a newer reading.
  let interfered = false;
  const interfere: RequestPolicyFactory = {
    create: (next: RequestPolicy): RequestPolicy => ({
      sendRequest: async (request) => {
        if (!interfered && request.method === 'PUT' && request.url.includes('latest.json')) {
          interfered = true;
          await competitor.recordReading(point('2025-06-01T12:00:00.000Z', 333));
        }
        return next.sendRequest(request);
      },
    }),
  };
  const pipeline = newPipeline(testStorage().blobs.credential as StorageSharedKeyCredential);
  pipeline.factories.unshift(interfere);
  const slow = new ReadingCache(new ContainerClient(container.url, pipeline));
  await slow.recordReading(point('2025-06-01T10:00:00.000Z', 250));

  expect(interfered).toBe(true);
  expect((await make().lastReading('NL'))?.point.gramsPerKwh).toBe(333);
  // its line still reaches the day file
  const day = await make().readings('NL', '2025-06-01T00:00:00Z', '2025-06-02T00:00:00Z');
  expect(day.map((p) => p.gramsPerKwh)).toEqual([180, 250, 333]);
});
