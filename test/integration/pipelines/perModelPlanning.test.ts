import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { composePipeline } from '../../../functions/composition';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { loadSettings } from '../../../shared/config';
import type { RetrainRequest } from '../../../shared/pipeline/contracts';
import { candidateRegions, planFromCarbon, type RegionCarbon } from '../../../shared/pipeline/planning';
import { uniqueName } from '../../support/storage';

/**
 * The planner reads each model's own regions and residency from its declaration; a model that
 * names none plans with the settings. The poller, which reads carbon once for every waiting
 * request, reads the regions of every deployed pipeline.
 */
it('plans each model within its own declared regions; the settings are the default', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pipelines-'));
  const file = path.join(dir, 'pipelines.json');
  writeFileSync(
    file,
    JSON.stringify({
      pipelines: [
        {
          name: 'vat-rate',
          label: 'vatRatePercent',
          features: [{ column: 'supplierId', kind: 'categorical' }],
        },
        {
          name: 'account-code',
          label: 'accountCode',
          features: [{ column: 'supplierId', kind: 'high-cardinality' }],
          regions: { allowed: ['germanywestcentral', 'francecentral'], residency: 'EU' },
        },
      ],
    }),
  );
  const settings = loadSettings({
    DataStorage: process.env.AZURITE_TEST_CONNECTION_STRING,
    PIPELINES_FILE: file,
    TASKHUB_NAME: uniqueName('hub'),
    ALLOWED_REGIONS: 'westeurope,swedencentral,norwayeast',
  });
  const clock = new VirtualClock(new Date('2024-09-02T06:00:00Z'));
  const ctx = await composePipeline(settings, { now: clock.now, log: () => {} });

  expect(candidateRegions(ctx, 'vat-rate')).toEqual(['westeurope', 'swedencentral', 'norwayeast']);
  expect(candidateRegions(ctx, 'account-code')).toEqual([
    'germanywestcentral',
    'francecentral',
    'westeurope',
  ]);
  expect(new Set(candidateRegions(ctx))).toEqual(
    new Set(['westeurope', 'swedencentral', 'norwayeast', 'germanywestcentral', 'francecentral']),
  );

  // Sweden is the cleanest grid of all, but outside account-code's regions.
  const latest: Record<string, number> = {
    swedencentral: 20,
    norwayeast: 30,
    francecentral: 60,
    germanywestcentral: 350,
    westeurope: 300,
  };
  const carbon: RegionCarbon[] = Object.entries(latest).map(([region, gramsPerKwh]) => ({
    region,
    forecast: null,
    latestGramsPerKwh: gramsPerKwh,
  }));
  const nowIso = clock.now().toISOString();
  const request = (modelName: string): RetrainRequest => ({
    requestId: `r-${modelName}`,
    modelName,
    kind: 'retrainNow',
    reason: 'test',
    requestedAt: nowIso,
    deadline: new Date(clock.now().getTime() + 3_600_000).toISOString(),
    triggeringBatch: null,
    relativeDrop: null,
  });
  expect(planFromCarbon(ctx, request('vat-rate'), nowIso, carbon).plan.region).toBe('swedencentral');
  expect(planFromCarbon(ctx, request('account-code'), nowIso, carbon).plan.region).toBe('francecentral');
});
