import path from 'node:path';
import { Readable } from 'node:stream';
import { loadSettings } from '../../../shared/config';
import { startAzurite } from '../../../shared/storage/azurite';
import { composePipeline } from '../../../functions/composition';
import { LocalHost } from '../../../functions/local/localHost';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { LocalLauncher, defaultEntrypoints } from '../../../shared/containers/localLauncher';
import { generateWeek, weekStartDate, type GeneratorOptions } from '../../../shared/invoices/generator';
import { serializeCsv } from '../../../shared/invoices/serialize';
import { RecordingTelemetry } from '../../../shared/telemetry/telemetry';
import { retrainInstanceId } from '../../../shared/pipeline/contracts';
import { builtRepoRoot } from '../../support/builtRepo';

/**
 * The demo's run-to-run drift (issue 16): the local host's virtual clock used to follow the wall
 * clock while a container worked, so a machine that trained or started a model API more slowly
 * saw later timestamps, more polls and, past the health-check budget, a failed rollout. The same
 * two weeks are run twice on real parts (Azurite, the durable replay, real training and model-API
 * processes); the second time every container starts seconds late, longer than the whole
 * health-check budget (2 checks 1 s apart). Everything the pipeline recorded must be identical,
 * down to the model bytes.
 */
const root = builtRepoRoot();
const MODEL = 'det-vat';
const generator: GeneratorOptions = {
  scenario: 'vat-reform',
  weeks: 2,
  rowsPerWeek: 1000,
  seed: 5,
  startDate: '2024-08-26',
};

async function runTwoWeeks(entrypoints: Record<string, string>): Promise<unknown> {
  const azurite = await startAzurite({ extentMemoryLimitMb: 256 });
  const settings = loadSettings({
    DataStorage: azurite.connectionString,
    MODEL_NAME: MODEL,
    CARBON_POLL_SCHEDULE: '0 0 * * * *',
    CONTAINER_POLL_SECONDS: '2',
    HEALTH_CHECK_INTERVAL_SECONDS: '1',
    HEALTH_CHECK_ATTEMPTS: '2',
    FOREST_TREES: '8',
  });
  const launcher = new LocalLauncher({
    entrypoints: { ...defaultEntrypoints(settings, root), ...entrypoints },
  });
  try {
    const clock = new VirtualClock(new Date('2024-09-02T06:00:00Z'));
    const ctx = await composePipeline(settings, {
      now: clock.now,
      launcher,
      telemetry: new RecordingTelemetry(clock.now),
      log: () => {},
    });
    const host = await LocalHost.create(ctx, clock);
    for (const week of [0, 1]) {
      const name = `invoices-${weekStartDate(generator, week)}.csv`;
      await ctx.invoices.upload(name, Readable.from(serializeCsv(generateWeek(generator, week))));
      await host.runUntil(new Date(clock.now().getTime() + 6 * 3_600_000), { realTimeStepMs: 100 });
    }
    const versions = await ctx.registry.listVersions(MODEL);
    return {
      clock: clock.now().toISOString(),
      // Left out: what this machine measured (CPU, energy) and what storage assigns (a blob's ETag,
      // hence the correlation and request ids built from it): identities, never inputs to a decision.
      evaluations: (await ctx.evaluations.list(MODEL)).map(
        ({ cpuSeconds: _c, wallSeconds: _w, etag: _e, correlationId: _id, ...record }) => record,
      ),
      runs: (await ctx.runRecords.listRuns(MODEL)).map((run) => ({
        runId: run.runId,
        outcome: run.outcome,
        // Ports are picked free per process; everything else in the detail must match.
        detail: run.detail.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>'),
        decision: run.decision,
        plan: run.plan,
        region: run.region,
        startedAt: run.startedAt,
        endedAt: run.endedAt,
        challengerVersionId: run.challengerVersionId,
        championAccuracy: run.championAccuracy,
        challengerAccuracy: run.challengerAccuracy,
        stages: run.stages.map((s) => `${s.stage}@${s.startedAt}`),
      })),
      versions: await Promise.all(
        versions.map(async (v) => ({
          versionId: v.versionId,
          trainedAt: v.trainedAt,
          dataWindow: v.dataWindow,
          accuracy: v.holdoutMetrics.accuracy,
          artifactSha256: await ctx.registry.getArtifactSha256(MODEL, v.versionId),
        })),
      ),
      champion: (await ctx.registry.getChampion(MODEL))?.pointer.versionId ?? null,
      serving: (await ctx.serving.get(MODEL))?.versionId ?? null,
      orchestration: await orchestrationTimeline(host),
    };
  } finally {
    await launcher.close();
    await azurite.stop();
  }
}

async function orchestrationTimeline(host: LocalHost) {
  const status = await host.runtime.getStatus(retrainInstanceId(MODEL));
  const output = status?.output as { outcome?: string; versionId?: string } | null;
  return {
    runtimeStatus: status?.runtimeStatus,
    createdAt: status?.createdAt,
    lastUpdatedAt: status?.lastUpdatedAt,
    outcome: output?.outcome,
    versionId: output?.versionId,
  };
}

it('records the same decisions, timeline and model bytes however slowly containers start', async () => {
  const prompt = await runTwoWeeks({});
  const slowStart = path.join(root, 'test/fixtures/containers/slowStart.mjs');
  const slow = await runTwoWeeks({
    'green-e2e-ml/training:latest': slowStart,
    'green-e2e-ml/model-api:latest': slowStart,
  });
  expect(prompt).toMatchObject({
    runs: [{ outcome: 'promoted' }, { outcome: 'promoted' }],
    versions: [{ artifactSha256: expect.stringMatching(/^[0-9a-f]{64}$/) }, {}],
  });
  expect(slow).toEqual(prompt);
}, 300_000);
