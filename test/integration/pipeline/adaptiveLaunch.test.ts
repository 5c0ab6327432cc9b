import { Readable } from 'node:stream';
import { composePipeline } from '../../../functions/composition';
import { LocalHost } from '../../../functions/local/localHost';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { loadSettings } from '../../../shared/config';
import type { GroupState } from '../../../shared/containers/launcher';
import { LocalLauncher, defaultEntrypoints } from '../../../shared/containers/localLauncher';
import { generateWeek, weekStartDate, type GeneratorOptions } from '../../../shared/invoices/generator';
import { serializeCsv } from '../../../shared/invoices/serialize';
import { evaluatedRecords } from '../../../shared/pipeline/batchEvaluation';
import { launchTraining } from '../../../shared/pipeline/containerActivities';
import type { PipelineContext } from '../../../shared/pipeline/context';
import { startAzurite, type RunningAzurite } from '../../../shared/storage/azurite';
import { deliverBatch } from '../../support/batchDelivery';
import { builtRepoRoot } from '../../support/builtRepo';

/**
 * TRAINING_MODE=adaptive (the default) through the real launch: the training job runs as a child
 * process on Azurite and the stored version says whether it was warm-started. A small drop on a
 * batch with no new label warm-starts from the champion even though the window also reads a batch
 * the champion trained on, which was accepted before any champion judged it (no drift record).
 */
const root = builtRepoRoot();
jest.setTimeout(180_000);

const MODEL = 'vat-rate';
const generator: GeneratorOptions = {
  scenario: 'stable',
  weeks: 4,
  rowsPerWeek: 800,
  seed: 5,
  startDate: '2024-06-03',
};
const batchName = (week: number): string => `b-${weekStartDate(generator, week)}.csv`;

let azurite: RunningAzurite;
let launcher: LocalLauncher;
let ctx: PipelineContext;
let host: LocalHost;
const clock = new VirtualClock(new Date('2024-07-01T06:00:00Z'));

beforeAll(async () => {
  azurite = await startAzurite();
  const settings = loadSettings({
    DataStorage: azurite.connectionString,
    MODEL_NAME: MODEL,
    TASKHUB_NAME: 'hubadaptive',
    FOREST_TREES: '6',
    CONTAINER_POLL_SECONDS: '2',
  });
  expect(settings.TRAINING_MODE).toBe('adaptive');
  launcher = new LocalLauncher({ entrypoints: defaultEntrypoints(settings, root) });
  ctx = await composePipeline(settings, { now: clock.now, launcher, log: () => {} });
  host = await LocalHost.create(ctx, clock);
  for (const week of [0, 1]) {
    const etag = await ctx.invoices.upload(
      batchName(week),
      Readable.from(serializeCsv(generateWeek(generator, week))),
    );
    await ctx.invoices.accept(batchName(week), etag);
  }
});

afterAll(async () => {
  await launcher?.close();
  await azurite?.stop();
});

async function train(versionId: string, extra: Partial<Parameters<typeof launchTraining>[1]>) {
  const launched = await launchTraining(ctx, {
    runId: `run-${versionId}-0001`,
    instanceId: `retrain-${MODEL}`,
    requestId: `req-${versionId}`,
    modelName: MODEL,
    versionId,
    region: 'swedencentral',
    attempt: 1,
    trainedAt: '2024-07-01T06:00:00.000Z',
    ...extra,
  });
  let state: GroupState = await launcher.status(launched.groupName);
  for (let i = 0; i < 1200 && (state.kind === 'pending' || state.kind === 'running'); i++) {
    await new Promise((r) => setTimeout(r, 100));
    state = await launcher.status(launched.groupName);
  }
  await launcher.delete(launched.groupName);
  expect(state.kind).toBe('succeeded');
  return { launched, metadata: await ctx.registry.getVersionMetadata(MODEL, versionId) };
}

describe('adaptive training mode at launch', () => {
  it('warm-starts a small drop with no new label, reading the newest batch the champion saw too', async () => {
    const first = await train('v1', { decisionKind: 'retrainNow' });
    expect(first.metadata.warmStartedFrom).toBeNull();
    expect(first.launched.dataWindow).toEqual([batchName(0), batchName(1)]);
    await ctx.registry.promote(MODEL, 'v1', { reason: 'test champion', expectedChampion: null });

    // The next batch goes through the real evaluator, which records its new-label share (none).
    const outcome = await deliverBatch(
      ctx,
      host.client,
      batchName(2),
      [...generateWeek(generator, 2)],
      clock.now().toISOString(),
    );
    if (outcome.kind !== 'evaluated') throw new Error(`expected an evaluation, got ${outcome.kind}`);
    expect(evaluatedRecords(outcome)[0].drift.unseenLabelShare).toBe(0);
    // The champion's own batches were accepted before it existed: no record says anything of them.
    const recorded = (await ctx.evaluations.list(MODEL)).map((r) => r.batchName);
    expect(recorded).not.toContain(batchName(1));

    const warm = await train('v2', { decisionKind: 'retrainWhenGreen' });
    expect(warm.launched.dataWindow).toEqual([batchName(1), batchName(2)]);
    expect(warm.metadata.warmStartedFrom).toBe('v1');
    const { treesGrown, trees } = warm.metadata.hyperparameters;
    expect(Number(treesGrown)).toBeLessThan(Number(trees));

    // The same window after a big drop refits.
    const refit = await train('v3', { decisionKind: 'retrainNow' });
    expect(refit.metadata.warmStartedFrom).toBeNull();
    expect(refit.launched.dataWindow).toEqual([batchName(0), batchName(1), batchName(2)]);
  });
});
