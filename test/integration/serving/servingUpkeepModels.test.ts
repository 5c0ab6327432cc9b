import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadSettings } from '../../../shared/config';
import { composePipeline } from '../../../functions/composition';
import { LocalLauncher } from '../../../shared/containers/localLauncher';
import { servingUpkeep } from '../../../shared/pipeline/servingUpkeep';
import { VAT_RATE_FEATURES } from '../../../shared/pipelines/manifest';
import { startAzurite, type RunningAzurite } from '../../../shared/storage/azurite';
import { uniqueName } from '../../support/storage';

/**
 * The `servingPlanner` timer keeps every declared model's serving on its own: a model whose
 * upkeep fails (here, its serving record names a version the registry never had) is reported and
 * left for the next run, and the models after it still get theirs.
 */
describe('serving upkeep per model', () => {
  let dir: string;
  // Its own storage: the upkeep also visits every model still served, and the run's shared
  // Azurite holds other tests' serving records.
  let azurite: RunningAzurite;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'upkeep-models-'));
    azurite = await startAzurite();
  });
  afterAll(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await azurite?.stop();
  });

  it('a model whose re-plan fails never holds up the next one', async () => {
    const broken = uniqueName('broken');
    const healthy = uniqueName('healthy');
    const file = path.join(dir, 'pipelines.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        pipelines: [
          { name: broken, label: 'vatRatePercent', features: VAT_RATE_FEATURES },
          { name: healthy, label: 'vatRatePercent', features: VAT_RATE_FEATURES },
        ],
      }),
    );
    const { connectionString } = azurite;
    // 00:30 UTC: the daily re-plan hour.
    const now = new Date('2024-09-03T00:30:00.000Z');
    const ctx = await composePipeline(
      loadSettings({ DataStorage: connectionString, PIPELINES_FILE: file, MODEL_NAME: broken }),
      { now: () => now, launcher: new LocalLauncher({ entrypoints: {} }), log: () => {} },
    );
    await ctx.serving.switchTo(broken, {
      groupName: `api-${broken}`,
      endpoint: null,
      versionId: 'never-registered',
      region: 'westeurope',
      cpuCores: 1,
      memoryGb: 1.5,
      since: '2024-09-02T06:00:00.000Z',
      plan: null,
    });

    const reports = await servingUpkeep(ctx);
    expect(reports.map((r) => [r.modelName, r.kind])).toEqual([
      [broken, 'failed'],
      [healthy, 'done'],
    ]);
    expect(reports[0]).toMatchObject({ reason: expect.stringMatching(/never-registered/) });
    expect(reports[1]).toMatchObject({ load: { kind: 'no-api' }, replan: { kind: 'no-api' } });
  });
});
