import { loadSettings } from '../../../shared/config';
import { composePipeline } from '../../../functions/composition';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { promoteChallenger, rollbackChampion } from '../../../shared/pipeline/championActivities';
import { metadataFor } from '../registry/fixtures';
import { uniqueName } from '../../support/storage';

/**
 * The rollback after a failed model-API health check, on the real registry (Azurite). The first
 * champion has no earlier one to return to: the activity used to fail, which ended the run as
 * plainly `failed` while the pointer stayed moved; now it reports that the champion stays.
 */
it('rolls back to the earlier champion, keeps a first champion, and is safe to repeat', async () => {
  const model = uniqueName('rollback-');
  const settings = loadSettings({
    DataStorage: process.env.AZURITE_TEST_CONNECTION_STRING,
    MODEL_NAME: model,
    TASKHUB_NAME: uniqueName('hub'),
  });
  const clock = new VirtualClock(new Date('2024-09-02T06:00:00Z'));
  const ctx = await composePipeline(settings, { now: clock.now, log: () => {} });
  for (const versionId of ['v1', 'v2']) {
    await ctx.registry.putVersion(metadataFor(model, versionId), `artifact of ${versionId}`);
  }
  const reason = 'model API failed its health check';

  await promoteChallenger(ctx, {
    modelName: model,
    versionId: 'v1',
    expectedChampion: null,
    reason: 'first',
  });
  expect(await rollbackChampion(ctx, { modelName: model, expectedChampion: 'v1', reason })).toEqual({
    championVersionId: 'v1',
  });
  expect((await ctx.registry.getChampion(model))?.pointer).toMatchObject({ versionId: 'v1', sequence: 1 });

  await promoteChallenger(ctx, {
    modelName: model,
    versionId: 'v2',
    expectedChampion: 'v1',
    reason: 'better',
  });
  for (let attempt = 0; attempt < 2; attempt++) {
    expect(await rollbackChampion(ctx, { modelName: model, expectedChampion: 'v2', reason })).toEqual({
      championVersionId: 'v1',
    });
  }
  expect((await ctx.registry.getChampion(model))?.pointer).toMatchObject({
    versionId: 'v1',
    action: 'rollback',
    sequence: 3,
  });
});
