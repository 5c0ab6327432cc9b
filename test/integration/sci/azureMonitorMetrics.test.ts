import { ProviderError, ValidationError } from '../../../shared/errors';
import { loadSettings } from '../../../shared/config';
import {
  AzureMonitorMetrics,
  azureMonitorUsageReader,
  metricsEndpointFor,
  usageIntervalsOf,
  type ContainerMetrics,
} from '../../../shared/sci/azureMonitorMetrics';
import { coefficientsFromSettings, footprintOfStage } from '../../../shared/sci/sci';
import {
  fixedTokenCredential,
  startFakeAzureMonitor,
  TEST_TOKEN,
  type FakeAzureMonitor,
  type FakePoint,
} from '../../support/fakeAzureMonitor';

const SUB = '00000000-0000-4000-8000-00000000a1a1';
const group = (name: string): string =>
  `/subscriptions/${SUB}/resourceGroups/rg-green/providers/Microsoft.ContainerInstance/containerGroups/${name}`;
const GiB = 1024 ** 3;
const at = (minute: number): string =>
  new Date(Date.UTC(2024, 4, 1, 12, minute)).toISOString().replace('.000Z', 'Z');

let fake: FakeAzureMonitor;
let credential: ReturnType<typeof fixedTokenCredential>;
let client: AzureMonitorMetrics;

beforeAll(async () => {
  fake = await startFakeAzureMonitor({ subscriptionId: SUB });
  credential = fixedTokenCredential();
  client = new AzureMonitorMetrics({
    endpoint: fake.endpoint,
    credential,
    trustedCaPem: fake.caPem,
    maxRetries: 1,
    retryDelayMs: 1,
  });
});
afterAll(async () => {
  await fake.close();
});

describe('AzureMonitorMetrics against a loopback metrics batch endpoint', () => {
  test('full coverage: per-minute samples clipped to the lifetime, CPU seconds, peak memory', async () => {
    const id = group('train-full');
    fake.setMetrics(id, {
      CpuUsage: [
        [
          { timeStamp: at(0), average: 1000, maximum: 1500 },
          { timeStamp: at(1), average: 2000, maximum: 2000 },
          { timeStamp: at(2), average: 500, maximum: 900 },
          { timeStamp: at(3), average: 1000, maximum: 1000 },
        ],
      ],
      MemoryUsage: [
        [
          { timeStamp: at(0), average: 1 * GiB, maximum: 1.5 * GiB },
          { timeStamp: at(1), average: 2 * GiB, maximum: 2.5 * GiB },
          { timeStamp: at(2), average: 2 * GiB, maximum: 2.25 * GiB },
          { timeStamp: at(3), average: 1 * GiB, maximum: 1 * GiB },
        ],
      ],
    });
    // Runs 12:00:30 → 12:03:30: 30 s of minute 0, all of 1 and 2, 30 s of minute 3.
    const m = await client.containerUsage({
      resourceId: id,
      startedAt: '2024-05-01T12:00:30Z',
      endedAt: '2024-05-01T12:03:30Z',
      vcpus: 2,
    });
    expect(m.samples).toEqual([
      { at: '2024-05-01T12:00:00.000Z', cpuMillicores: 1000, memoryBytes: 1 * GiB },
      { at: '2024-05-01T12:01:00.000Z', cpuMillicores: 2000, memoryBytes: 2 * GiB },
      { at: '2024-05-01T12:02:00.000Z', cpuMillicores: 500, memoryBytes: 2 * GiB },
      { at: '2024-05-01T12:03:00.000Z', cpuMillicores: 1000, memoryBytes: 1 * GiB },
    ]);
    // 1.0 core × 30 s + 2.0 × 60 + 0.5 × 60 + 1.0 × 30 = 210 CPU-seconds over 180 s on 2 vCPUs.
    expect(m.cpuSeconds).toBeCloseTo(210, 9);
    expect(m.measuredCpuSeconds).toBeCloseTo(210, 9);
    expect(m.utilisation).toEqual({ source: 'measured', fraction: expect.closeTo(210 / 360, 9) });
    expect(m.coverage).toBe(1);
    expect(m.gaps).toEqual([]);
    expect(m.peakMemoryBytes).toBe(2.5 * GiB);

    const request = fake.requests.at(-1)!;
    expect(request.method).toBe('POST');
    expect(request.path).toBe(`/subscriptions/${SUB}/metrics:getBatch`);
    expect(request.query.get('api-version')).toBe('2024-02-01');
    expect(request.query.get('metricnamespace')).toBe('Microsoft.ContainerInstance/containerGroups');
    expect(request.query.get('metricnames')).toBe('CpuUsage,MemoryUsage');
    expect(request.query.get('aggregation')).toBe('Average,Maximum');
    expect(request.query.get('interval')).toBe('PT1M');
    // The window is aligned to whole grains around the lifetime.
    expect(request.query.get('starttime')).toBe('2024-05-01T12:00:00.000Z');
    expect(request.query.get('endtime')).toBe('2024-05-01T12:04:00.000Z');
    expect(JSON.parse(request.body)).toEqual({ resourceids: [id] });
    expect(request.authorization).toBe(`Bearer ${TEST_TOKEN}`);
    expect(credential.scopes.at(-1)).toEqual(['https://management.azure.com/.default']);
  });

  test('gaps are reported as gaps, not zeros, and CPU time over them is extrapolated and labelled', async () => {
    const id = group('train-gaps');
    const cpu: FakePoint[] = [
      { timeStamp: at(0), average: 1000 },
      { timeStamp: at(1) }, // the service's "no data" point: a timestamp without aggregates
      { timeStamp: at(2), average: null },
      { timeStamp: at(3), average: 1000 },
      // minute 4 absent altogether
      { timeStamp: at(5), average: 1000 },
    ];
    fake.setMetrics(id, {
      CpuUsage: [cpu],
      MemoryUsage: [[{ timeStamp: at(0), average: GiB, maximum: GiB }]],
    });
    const m = await client.containerUsage({
      resourceId: id,
      startedAt: '2024-05-01T12:00:00Z',
      endedAt: '2024-05-01T12:06:00Z',
      vcpus: 2,
    });
    expect(m.samples.map((s) => s.cpuMillicores)).toEqual([1000, null, null, 1000, null, 1000]);
    expect(m.coverage).toBeCloseTo(3 / 6, 12);
    expect(m.gaps.filter((g) => g.metric === 'CpuUsage')).toEqual([
      { metric: 'CpuUsage', from: '2024-05-01T12:01:00.000Z', to: '2024-05-01T12:03:00.000Z' },
      { metric: 'CpuUsage', from: '2024-05-01T12:04:00.000Z', to: '2024-05-01T12:05:00.000Z' },
    ]);
    expect(m.gaps.filter((g) => g.metric === 'MemoryUsage')).toEqual([
      { metric: 'MemoryUsage', from: '2024-05-01T12:01:00.000Z', to: '2024-05-01T12:06:00.000Z' },
    ]);
    expect(m.measuredCpuSeconds).toBeCloseTo(180, 9); // 3 measured minutes at one core
    expect(m.cpuSeconds).toBeCloseTo(360, 9); // the measured rate carried over the 3 missing minutes
    expect(m.utilisation).toEqual({ source: 'measured-with-gaps', fraction: expect.closeTo(0.5, 9) });

    const intervals = usageIntervalsOf(m);
    expect(intervals.map((i) => i.cpuSeconds)).toEqual([60, null, null, 60, null, 60]);
    expect(intervals.reduce((s, i) => s + i.seconds, 0)).toBe(360);
  });

  test('a run shorter than one grain falls back to 50 % and says so', async () => {
    const id = group('train-short');
    fake.setMetrics(id, { CpuUsage: [[{ timeStamp: at(10), average: 1900 }]] });
    const m = await client.containerUsage({
      resourceId: id,
      startedAt: '2024-05-01T12:10:10Z',
      endedAt: '2024-05-01T12:10:50Z',
      vcpus: 2,
    });
    expect(m.utilisation).toEqual({ source: 'assumed-50%', fraction: 0.5, reason: 'shorter-than-grain' });
    expect(m.cpuSeconds).toBeCloseTo(0.5 * 2 * 40, 9);
    expect(m.measuredCpuSeconds).toBeNull();
    expect(usageIntervalsOf(m).every((i) => i.cpuSeconds === null)).toBe(true);
  });

  test('no CPU data at all: assumed 50 % with the reason, coverage 0', async () => {
    const m = await client.containerUsage({
      resourceId: group('never-reported'),
      startedAt: '2024-05-01T12:00:00Z',
      endedAt: '2024-05-01T12:05:00Z',
      vcpus: 1,
    });
    expect(m.coverage).toBe(0);
    expect(m.utilisation).toEqual({ source: 'assumed-50%', fraction: 0.5, reason: 'no-cpu-data' });
    expect(m.cpuSeconds).toBeCloseTo(150, 9);
    expect(m.peakMemoryBytes).toBeNull();
  });

  test('several containers in a group are summed per minute', async () => {
    const id = group('two-containers');
    fake.setMetrics(id, {
      CpuUsage: [
        [
          { timeStamp: at(0), average: 300 },
          { timeStamp: at(1), average: 300 },
        ],
        [{ timeStamp: at(0), average: 700 }, { timeStamp: at(1) }],
      ],
    });
    const m = await client.containerUsage({
      resourceId: id,
      startedAt: '2024-05-01T12:00:00Z',
      endedAt: '2024-05-01T12:02:00Z',
      vcpus: 1,
    });
    expect(m.samples.map((s) => s.cpuMillicores)).toEqual([1000, 300]);
    expect(m.cpuSeconds).toBeCloseTo(78, 9);
  });

  test('measured intervals feed Σ E_t · I_t for a stage that crosses an intensity boundary', async () => {
    const id = group('train-hour-boundary');
    // 12:58 → 13:02, one core busy before 13:00 and two after.
    fake.setMetrics(id, {
      CpuUsage: [
        [
          { timeStamp: '2024-05-01T12:58:00Z', average: 1000 },
          { timeStamp: '2024-05-01T12:59:00Z', average: 1000 },
          { timeStamp: '2024-05-01T13:00:00Z', average: 2000 },
          { timeStamp: '2024-05-01T13:01:00Z', average: 2000 },
        ],
      ],
    });
    const m = await client.containerUsage({
      resourceId: id,
      startedAt: '2024-05-01T12:58:00Z',
      endedAt: '2024-05-01T13:02:00Z',
      vcpus: 2,
    });
    const c = coefficientsFromSettings(loadSettings({ DataStorage: 'UseDevelopmentStorage=true' }));
    const point = (startsAt: string, gramsPerKwh: number) => ({
      startsAt,
      durationMinutes: 60,
      gramsPerKwh,
      zone: 'NL',
      signal: 'average' as const,
      provider: 'trace:em_NL_2022',
      source: 'trace' as const,
    });
    const f = footprintOfStage(
      {
        stage: 'train',
        region: 'westeurope',
        startedAt: m.startedAt,
        endedAt: m.endedAt,
        cpuCores: 2,
        memoryGb: 4,
        cpuSeconds: m.cpuSeconds,
        resourceSource: 'azure-monitor',
        functionalUnit: { kind: 'retrain', count: 1 },
        intensity: { series: [point('2024-05-01T12:00:00Z', 100), point('2024-05-01T13:00:00Z', 400)] },
        intervals: usageIntervalsOf(m),
      },
      c,
    );
    // Hand-computed: per minute, E = (2 vCPU·W(u)/1000 + 4 GB·0.000392)·(1/60 h)·1.185.
    const perMinuteKwh = (u: number): number =>
      ((2 * (0.74 + u * 2.8)) / 1000 + 4 * 0.000392) * (1 / 60) * 1.185;
    const before = 2 * perMinuteKwh(0.5);
    const after = 2 * perMinuteKwh(1);
    expect(f.energy.energyKwh).toBeCloseTo(before + after, 12);
    expect(f.operationalGrams).toBeCloseTo(before * 100 + after * 400, 10);
    // A single average intensity would have understated it: the busy half ran on the dirtier hour.
    expect(f.operationalGrams).toBeGreaterThan(f.energy.energyKwh * 250);
    expect(f.intensity).toEqual({
      gramsPerKwh: expect.closeTo((before * 100 + after * 400) / (before + after), 9),
      provider: 'trace:em_NL_2022',
      source: 'series:trace',
      signal: 'average',
    });
  });
});

describe('AzureMonitorMetrics failures', () => {
  const query = {
    resourceId: group('faulty'),
    startedAt: '2024-05-01T12:00:00Z',
    endedAt: '2024-05-01T12:05:00Z',
    vcpus: 1,
  };

  test('a rejected token is PROVIDER_UNAUTHORIZED and names the missing role, not the token', async () => {
    const wrong = new AzureMonitorMetrics({
      endpoint: fake.endpoint,
      credential: fixedTokenCredential('some-other-token'),
      trustedCaPem: fake.caPem,
      maxRetries: 0,
    });
    const error = await wrong.containerUsage(query).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ code: 'PROVIDER_UNAUTHORIZED', statusCode: 401, retryable: false });
    expect((error as Error).message).toContain('Monitoring Reader');
    expect(JSON.stringify(error)).not.toContain('some-other-token');
  });

  test('a transient 503 is retried by the pipeline; a persistent one is a retryable PROVIDER_HTTP', async () => {
    fake.inject({ status: 503, times: 1 });
    const before = fake.requests.length;
    await expect(client.containerUsage(query)).resolves.toMatchObject({ coverage: 0 });
    expect(fake.requests.length - before).toBe(2);

    fake.inject({ status: 503, times: 2 });
    await expect(client.containerUsage(query)).rejects.toMatchObject({
      code: 'PROVIDER_HTTP',
      statusCode: 503,
      retryable: true,
    });
  });

  test('a 400 is not retryable', async () => {
    fake.inject({ status: 400, body: { error: { code: 'BadRequest', message: 'bad filter' } } });
    await expect(client.containerUsage(query)).rejects.toMatchObject({
      code: 'PROVIDER_HTTP',
      statusCode: 400,
      retryable: false,
    });
  });

  test('bodies that are not the batch format are PROVIDER_RESPONSE_INVALID', async () => {
    fake.inject({ status: 200, body: { values: [{ resourceid: query.resourceId }] } });
    await expect(client.containerUsage(query)).rejects.toMatchObject({ code: 'PROVIDER_RESPONSE_INVALID' });

    fake.inject({
      status: 200,
      body: {
        values: [
          {
            starttime: '2024-05-01T12:00:00Z',
            endtime: '2024-05-01T12:05:00Z',
            resourceid: query.resourceId,
            value: [
              {
                id: `${query.resourceId}/providers/Microsoft.Insights/metrics/CpuUsage`,
                name: { value: 'CpuUsage', localizedValue: 'CPU Usage' },
                unit: 'Count',
                timeseries: [{ data: [{ timeStamp: '2024-05-01T12:00:00Z', average: 'lots' }] }],
              },
            ],
          },
        ],
      },
    });
    const error = await client.containerUsage(query).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PROVIDER_RESPONSE_INVALID' });
    expect((error as Error).message).toContain('average');

    fake.inject({ status: 200, body: { values: [] } });
    await expect(client.containerUsage(query)).rejects.toMatchObject({ code: 'PROVIDER_RESPONSE_INVALID' });
  });

  test('a per-metric error code is NO_DATA with the code, not an empty success', async () => {
    const id = group('metric-error');
    fake.setMetrics(id, {
      errors: { CpuUsage: { code: 'InternalServerError', message: 'backend unavailable' } },
    });
    await expect(client.containerUsage({ ...query, resourceId: id })).rejects.toMatchObject({
      code: 'NO_DATA',
      details: { metric: 'CpuUsage', errorCode: 'InternalServerError' },
    });
  });

  test('bad queries fail before any request', async () => {
    const before = fake.requests.length;
    await expect(client.containerUsage({ ...query, resourceId: '/not/a/group' })).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(
      client.containerUsage({ ...query, startedAt: query.endedAt, endedAt: query.startedAt }),
    ).rejects.toThrow(/endedAt: is before startedAt/);
    expect(fake.requests.length).toBe(before);
  });
});

describe('azureMonitorUsageReader (what collectContainerUsage calls on ACI)', () => {
  test('builds the group id from settings and reports measured CPU, or null when it was assumed', async () => {
    const settings = {
      AZURE_SUBSCRIPTION_ID: SUB,
      ACI_RESOURCE_GROUP: 'rg-green',
      METRICS_ENDPOINT: fake.endpoint,
    };
    const read = azureMonitorUsageReader(settings, { credential, trustedCaPem: fake.caPem, maxRetries: 0 });
    fake.setMetrics(group('train-run-42'), {
      CpuUsage: [
        [
          { timeStamp: at(20), average: 1500 },
          { timeStamp: at(21), average: 500 },
        ],
      ],
      MemoryUsage: [[{ timeStamp: at(20), average: GiB, maximum: 3 * GiB }]],
    });
    const measured = await read({
      groupName: 'train-run-42',
      region: 'westeurope',
      cpuCores: 2,
      launchedAt: '2024-05-01T12:20:00Z',
      endedAt: '2024-05-01T12:22:00Z',
    });
    expect(measured).toMatchObject({ cpuSeconds: expect.closeTo(120, 9), peakMemoryBytes: 3 * GiB });
    expect(JSON.parse(fake.requests.at(-1)!.body)).toEqual({ resourceids: [group('train-run-42')] });

    const short = await read({
      groupName: 'train-run-42',
      region: 'westeurope',
      cpuCores: 2,
      launchedAt: '2024-05-01T12:20:00Z',
      endedAt: '2024-05-01T12:20:30Z',
    });
    expect(short.cpuSeconds).toBeNull();
    expect(short.metrics.utilisation).toMatchObject({ source: 'assumed-50%', reason: 'shorter-than-grain' });
  });

  test('missing subscription or resource group is a clear error at construction', () => {
    expect(() => azureMonitorUsageReader({ ACI_RESOURCE_GROUP: 'rg' })).toThrow(/AZURE_SUBSCRIPTION_ID/);
  });
});

describe('metricsEndpointFor', () => {
  test('regional public endpoint unless overridden', () => {
    expect(metricsEndpointFor('swedencentral')).toBe('https://swedencentral.metrics.monitor.azure.com');
    expect(metricsEndpointFor('swedencentral', 'https://127.0.0.1:9999/')).toBe('https://127.0.0.1:9999');
    expect(() => metricsEndpointFor('evil.example.com/')).toThrow(ValidationError);
  });
});

// Keeps the exported type in use so a signature change shows up here first.
export type _Metrics = ContainerMetrics;
