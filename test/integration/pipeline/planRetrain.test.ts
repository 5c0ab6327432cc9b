import { composePipeline } from '../../../functions/composition';
import { loadSettings } from '../../../shared/config';
import { planRetrain } from '../../../shared/pipeline/planning';
import { startLoopbackServer, type LoopbackServer } from '../../support/loopbackHttp';
import { uniqueName } from '../../support/storage';

/**
 * The planning activity against a provider that hangs (Electricity Maps' paths on a loopback
 * server that never answers in time): it stops at the overall carbon deadline, not after every
 * region × attempt × per-request timeout, and still plans from the fallback (annual averages).
 */
let server: LoopbackServer;
beforeEach(async () => {
  server = await startLoopbackServer();
});
afterEach(async () => {
  await server.close();
});

test('planRetrain stops its carbon reads at CARBON_POLL_DEADLINE_SECONDS and still records a plan', async () => {
  server.route('GET', '/v3/carbon-intensity/forecast', { delayMs: 120_000, body: {} });
  server.route('GET', '/v3/carbon-intensity/latest', { delayMs: 120_000, body: {} });
  const modelName = uniqueName('plan-model-');
  const settings = loadSettings({
    DataStorage: process.env.AZURITE_TEST_CONNECTION_STRING,
    MODEL_NAME: modelName,
    CARBON_PROVIDER: 'electricitymaps',
    ELECTRICITYMAPS_API_TOKEN: 'em-secret-token',
    ELECTRICITYMAPS_BASE_URL: `${server.baseUrl}/v3`,
    ALLOWED_REGIONS: 'westeurope,germanywestcentral',
    CARBON_POLL_DEADLINE_SECONDS: '1',
    // Per request alone, two regions × (forecast, latest) × retries would take minutes.
    CARBON_HTTP_TIMEOUT_MS: '30000',
  });
  const logs: string[] = [];
  const ctx = await composePipeline(settings, { log: (m) => logs.push(m) });
  const nowIso = new Date().toISOString();
  const request = {
    requestId: 'r-plan-1',
    modelName,
    kind: 'retrainWhenGreen' as const,
    reason: 'small drop',
    requestedAt: nowIso,
    deadline: new Date(Date.now() + 24 * 3_600_000).toISOString(),
    triggeringBatch: null,
    relativeDrop: 0.03,
  };
  await ctx.pending.submit(request, nowIso);

  const plan = await planRetrain(ctx, { request, nowIso, escalation: null });

  // Every live read was cut within the shared 1 s deadline (not by its own 30 s timeout): cut in
  // flight, or not sent once the deadline had passed (on a busy machine) …
  const cut = logs.filter((l) => /live failed for (?:NL|DE): TIMEOUT/.test(l));
  expect(cut).toHaveLength(4);
  for (const line of cut) {
    const inFlightMs = /timed out after (\d+) ms/.exec(line)?.[1];
    if (inFlightMs === undefined) expect(line).toMatch(/the poll deadline of 1000 ms was reached/);
    else expect(Number(inFlightMs)).toBeLessThanOrEqual(1000);
  }
  // … and the plan was still made, from annual averages, and recorded with the request.
  expect(plan.reason).toMatch(/start now/);
  expect((await ctx.pending.get(modelName))?.latestPlan).toStrictEqual(plan);
});
