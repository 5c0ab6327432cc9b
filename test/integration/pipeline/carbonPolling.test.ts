import { loadSettings } from '../../../shared/config';
import { startAzurite, type RunningAzurite } from '../../../shared/storage/azurite';
import { composePipeline } from '../../../functions/composition';
import { LocalHost } from '../../../functions/local/localHost';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { orchestrationTimings, pollCarbon } from '../../../shared/pipeline/carbonPolling';
import { startRetrainSingleton } from '../../../shared/pipeline/orchestrationClient';
import type { PipelineContext } from '../../../shared/pipeline/context';
import { type LoopbackServer, startLoopbackServer } from '../../support/loopbackHttp';

/**
 * The poller on real parts (Azurite, the local Durable runtime, Electricity Maps' wire format on a
 * loopback server): it calls the provider only when a waiting request can be re-planned, and a
 * provider that hangs cannot hold the poll past its deadline.
 */
jest.setTimeout(60_000);

const T0 = '2024-09-02T10:00:00.000Z';
let azurite: RunningAzurite;
let server: LoopbackServer;
let logs: string[];
beforeEach(async () => {
  azurite = await startAzurite({ extentMemoryLimitMb: 64 });
  server = await startLoopbackServer();
  logs = [];
});
afterEach(async () => {
  await server.close();
  await azurite.stop();
});

async function harness(): Promise<{ ctx: PipelineContext; host: LocalHost }> {
  const settings = loadSettings({
    DataStorage: azurite.connectionString,
    MODEL_NAME: 'poll-model',
    TASKHUB_NAME: 'hubpoll',
    CARBON_PROVIDER: 'electricitymaps',
    ELECTRICITYMAPS_API_TOKEN: 'em-secret-token',
    ELECTRICITYMAPS_BASE_URL: `${server.baseUrl}/v3`,
    ALLOWED_REGIONS: 'westeurope,germanywestcentral',
    CARBON_POLL_SCHEDULE: '0 0 * * * *',
    CARBON_POLL_DEADLINE_SECONDS: '1',
    CARBON_HTTP_TIMEOUT_MS: '30000',
  });
  const clock = new VirtualClock(new Date(T0));
  const ctx = await composePipeline(settings, { now: () => clock.now(), log: (m) => logs.push(m) });
  return { ctx, host: await LocalHost.create(ctx, clock) };
}

test('with no retrain request waiting, a poll makes no provider call', async () => {
  const { ctx, host } = await harness();
  const summary = await pollCarbon(ctx, host.client);
  expect(summary.carbon).toEqual({ kind: 'skip', reason: 'no retrain request is waiting for a window' });
  expect(summary.readings).toEqual([]);
  expect(server.requests).toHaveLength(0);
});

test('a waiting request is re-planned; a hanging provider ends at the poll deadline and the chain falls back', async () => {
  server.route('GET', '/v3/carbon-intensity/forecast', { delayMs: 60_000, body: {} });
  server.route('GET', '/v3/carbon-intensity/latest', { delayMs: 60_000, body: {} });
  const { ctx, host } = await harness();
  const request = {
    requestId: 'r-1',
    modelName: 'poll-model',
    kind: 'retrainWhenGreen' as const,
    reason: 'small drop',
    requestedAt: T0,
    deadline: '2024-09-03T10:00:00.000Z',
    triggeringBatch: null,
    relativeDrop: 0.03,
  };
  await ctx.pending.submit(request, T0);
  await startRetrainSingleton(host.client, { request, timings: orchestrationTimings(ctx), generation: 0 });

  const summary = await pollCarbon(ctx, host.client);
  expect(summary.carbon).toEqual({ kind: 'poll', reasons: ['poll-model: no plan yet'] });
  // Both regions were asked (forecast and latest each), and every request was cut by the deadline.
  expect(server.requests.length).toBeGreaterThanOrEqual(4);
  expect(
    logs.filter((l) => /carbon: live failed for (NL|DE): TIMEOUT/.test(l)).length,
  ).toBeGreaterThanOrEqual(4);
  // Without live data or a cache, the readings are the annual averages and no forecast is trusted.
  expect(summary.readings.map((r) => [r.region, r.source])).toEqual([
    ['westeurope', null],
    ['germanywestcentral', null],
  ]);
  const pending = await ctx.pending.get('poll-model');
  expect(pending?.latestPlan?.reason).toMatch(/start now/);
});
