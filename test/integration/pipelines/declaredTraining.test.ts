import path from 'node:path';
import { Readable } from 'node:stream';
import { composePipeline } from '../../../functions/composition';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { loadSettings } from '../../../shared/config';
import { LocalLauncher, defaultEntrypoints } from '../../../shared/containers/localLauncher';
import type { GroupState } from '../../../shared/containers/launcher';
import { generateWeek, weekStartDate, type GeneratorOptions } from '../../../shared/invoices/generator';
import type { InvoiceRow } from '../../../shared/invoices/schema';
import { serializeCsv } from '../../../shared/invoices/serialize';
import { FEATURE_SCHEMA_VERSION } from '../../../shared/model/features';
import { modelApiCredentials } from '../../../shared/modelApi/credentials';
import {
  checkModelApiHealth,
  launchTraining,
  modelApiGroupName,
  modelApiSpec,
} from '../../../shared/pipeline/containerActivities';
import { containerStorageEnvironment, type PipelineContext } from '../../../shared/pipeline/context';
import { EXIT_BAD_INPUT } from '../../../containers/training/main';
import { parseModelArtifact } from '../../../shared/pipeline/modelCache';
import { DECLARED_ARTIFACT_FORMAT } from '../../../shared/pipelines/declaredModel';
import { deployedPipeline } from '../../../shared/pipelines/deployedPipelines';
import { encodingVersion } from '../../../shared/pipelines/featureEncoding';
import { startAzurite, type RunningAzurite } from '../../../shared/storage/azurite';
import { LocalHost } from '../../../functions/local/localHost';
import { orchestrationTimings } from '../../../shared/pipeline/carbonPolling';
import { compareChallenger } from '../../../shared/pipeline/comparison';
import type { RetrainRequest } from '../../../shared/pipeline/contracts';
import { startRetrainSingleton } from '../../../shared/pipeline/orchestrationClient';
import { trainDeclaredModel } from '../../../shared/pipelines/declaredModel';
import { parseInvoiceBatch, type ParsedRecord } from '../../../shared/invoices/parser';
import { deserializeModel } from '../../../shared/model/artifact';
import { ChunkedEvaluator } from '../../../shared/model/evaluation';
import { isHoldoutRow } from '../../../shared/model/training';
import { builtRepoRoot } from '../../support/builtRepo';

/**
 * The orchestrator's side of a declared pipeline on real parts: the `launchTraining` activity
 * starts the compiled training job as a child process (the local launcher) on Azurite with the
 * pipeline's own declaration, window and forest; the artifact it stores is served by the compiled
 * model API process, which answers account-code predictions for rows carrying only the columns
 * that model reads. The single-model pipeline beside it trains exactly as before.
 */
const root = builtRepoRoot();

const generator: GeneratorOptions = {
  scenario: 'stable',
  weeks: 9,
  rowsPerWeek: 500,
  seed: 21,
  startDate: '2024-06-03',
};

let azurite: RunningAzurite;
let launcher: LocalLauncher;
let ctx: PipelineContext;
const clock = new VirtualClock(new Date('2024-08-05T06:00:00Z'));

beforeAll(async () => {
  azurite = await startAzurite();
  const settings = loadSettings({
    DataStorage: azurite.connectionString,
    PIPELINES_FILE: path.join(root, 'pipelines.sample.json'),
    MODEL_NAME: 'vat-rate',
    TASKHUB_NAME: 'hubdeclared',
    FOREST_TREES: '6',
    CARBON_POLL_SCHEDULE: '0 0 * * * *',
    CONTAINER_POLL_SECONDS: '2',
    HEALTH_CHECK_INTERVAL_SECONDS: '1',
    HEALTH_CHECK_ATTEMPTS: '10',
  });
  launcher = new LocalLauncher({ entrypoints: defaultEntrypoints(settings, root) });
  ctx = await composePipeline(settings, { now: clock.now, launcher, log: () => {} });
  for (let week = 0; week < 8; week++) {
    const name = `b-${weekStartDate(generator, week)}.csv`;
    const etag = await ctx.invoices.upload(name, Readable.from(serializeCsv(generateWeek(generator, week))));
    await ctx.invoices.accept(name, etag);
  }
});

afterAll(async () => {
  await launcher?.close();
  await azurite?.stop();
});

async function finished(groupName: string): Promise<GroupState> {
  for (let i = 0; i < 1200; i++) {
    const state = await launcher.status(groupName);
    if (state.kind !== 'pending' && state.kind !== 'running') return state;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${groupName} did not finish`);
}

async function train(modelName: string, versionId: string) {
  const launched = await launchTraining(ctx, {
    runId: `run-${versionId}-0001`,
    instanceId: `retrain-${modelName}`,
    requestId: `req-${versionId}`,
    modelName,
    versionId,
    region: 'swedencentral',
    attempt: 1,
    trainedAt: '2024-08-05T06:00:00.000Z',
  });
  const state = await finished(launched.groupName);
  const logs = await launcher.logs(launched.groupName);
  await launcher.delete(launched.groupName);
  expect({ state: state.kind, logs }).toEqual({ state: 'succeeded', logs: expect.any(String) });
  return { launched, logs };
}

describe('declared pipeline: training container and model API', () => {
  jest.setTimeout(180_000);

  it('trains account-code from its declaration (6-batch window, 40 trees) into a declared artifact and serves it', async () => {
    const declared = deployedPipeline(ctx.settings, 'account-code');
    const { launched, logs } = await train('account-code', 'ac-1');
    // The pipeline's own window (6 of the 8 accepted batches), not TRAINING_WINDOW_BATCHES (8).
    const accepted = (await ctx.invoices.listAccepted()).map((b) => b.name);
    expect(launched.dataWindow).toEqual(accepted.slice(-6));

    const metadata = await ctx.registry.getVersionMetadata('account-code', 'ac-1');
    expect(metadata).toMatchObject({
      modelName: 'account-code',
      versionId: 'ac-1',
      trainedAt: '2024-08-05T06:00:00.000Z',
      featureSchemaVersion: encodingVersion(declared),
      dataWindow: accepted.slice(-6),
      warmStartedFrom: null,
      hyperparameters: expect.objectContaining({ trees: 40, label: 'accountCode' }),
    });
    expect(metadata.holdoutMetrics.accuracy).toBeGreaterThan(0.6);
    expect(metadata.classes.length).toBeGreaterThan(3);
    // The job's summary line reports the held-out metrics it stored.
    const summary = JSON.parse(logs.split('\n').find((l) => l.includes('training-complete')) ?? '{}') as {
      holdoutMetrics?: unknown;
    };
    expect(summary.holdoutMetrics).toEqual(metadata.holdoutMetrics);
    // Stored hashed, as every registry write: the artifact reads back only with its recorded SHA-256.
    const artifact = await ctx.registry.downloadArtifact('account-code', 'ac-1');
    expect(parseModelArtifact(artifact).format).toBe('declared');
    expect(artifact.startsWith(`{"format":"${DECLARED_ARTIFACT_FORMAT}"`)).toBe(true);
    expect(await ctx.registry.getArtifactSha256('account-code', 'ac-1')).toMatch(/^[0-9a-f]{64}$/);

    // The real model API process serves it.
    const api = { modelName: 'account-code', versionId: 'ac-1', instanceId: 'i', runId: 'run-serve-ac-1' };
    const groupName = modelApiGroupName(api.runId);
    await launcher.create(modelApiSpec(ctx, { ...api, groupName }, null));
    try {
      let health = await checkModelApiHealth(ctx, { groupName, expectedVersionId: 'ac-1' });
      for (let i = 0; i < 100 && !health.healthy; i++) {
        await new Promise((r) => setTimeout(r, 100));
        health = await checkModelApiHealth(ctx, { groupName, expectedVersionId: 'ac-1' });
      }
      expect(health).toMatchObject({ healthy: true, servingVersion: 'ac-1' });
      const endpoint = health.endpoint as string;
      const call = async (body: unknown, route = '/predict') => {
        const response = await fetch(`${endpoint}${route}`, {
          method: route === '/predict' ? 'POST' : 'GET',
          headers: { 'content-type': 'application/json', ...modelApiCredentials('local').headers },
          ...(route === '/predict' ? { body: JSON.stringify(body) } : {}),
        });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      };

      const info = await call(null, '/model');
      expect(info.body).toMatchObject({
        modelName: 'account-code',
        label: 'accountCode',
        featureSchemaVersion: encodingVersion(declared),
        requiredColumns: declared.features.map((f) => f.column),
      });

      // Only the columns account-code reads: no id, no vatRatePercent, no accountCode.
      const fresh = [...generateWeek(generator, 8)].slice(0, 200);
      const rows = fresh.map((row) =>
        onlyColumns(
          row,
          declared.features.map((f) => f.column),
        ),
      );
      const answer = await call({ invoices: rows });
      expect(answer.status).toBe(200);
      const predictions = answer.body.predictions as { accountCode: string; probability: number }[];
      expect(predictions).toHaveLength(200);
      for (const p of predictions) expect(metadata.classes).toContain(p.accountCode);
      const correct = predictions.filter((p, i) => p.accountCode === fresh[i].accountCode).length;
      expect(correct / 200).toBeGreaterThan(metadata.holdoutMetrics.accuracy - 0.15);

      // A whole invoice (every column, label included) is accepted too: unread columns are ignored.
      expect((await call(fresh[0])).status).toBe(200);

      // A row without a column the model reads, or with a bad one, is a 400 naming it.
      const { receiverId: _gone, ...withoutReceiver } = rows[0];
      const missing = await call({ invoices: [rows[1], withoutReceiver] });
      expect(missing.status).toBe(400);
      expect(issues(missing.body)).toEqual([{ path: 'invoices.1.receiverId', message: 'required' }]);
      const bad = await call({ ...rows[0], amountNet: 'lots', accountCode: 12 });
      expect(bad.status).toBe(400);
      expect(issues(bad.body).map((i) => i.path)).toEqual(['amountNet', 'accountCode']);
      expect((await call({ ...rows[0], colour: 'blue' })).status).toBe(400);
    } finally {
      await launcher.delete(groupName);
    }
  });

  it('trains the single-model pipeline beside it exactly as before: FOREST_*, the default window, today’s artifact', async () => {
    const { launched } = await train('vat-rate', 'vr-1');
    const accepted = (await ctx.invoices.listAccepted()).map((b) => b.name);
    expect(launched.dataWindow).toEqual(accepted.slice(-8));
    const metadata = await ctx.registry.getVersionMetadata('vat-rate', 'vr-1');
    expect(metadata).toMatchObject({
      featureSchemaVersion: FEATURE_SCHEMA_VERSION,
      hyperparameters: expect.objectContaining({ trees: 6 }),
    });
    expect(parseModelArtifact(await ctx.registry.downloadArtifact('vat-rate', 'vr-1')).format).toBe('single');
  });
});

describe('declared pipeline: a bad declaration in the real container', () => {
  jest.setTimeout(60_000);

  it('exits with the bad-input code and one log line naming the problem', async () => {
    const storage = containerStorageEnvironment(ctx.settings, ctx.settings.TRAINING_IDENTITY_CLIENT_ID);
    const groupName = 'train-bad-definition';
    await launcher.create({
      groupName,
      role: 'training',
      image: ctx.settings.TRAINING_IMAGE,
      region: 'swedencentral',
      cpuCores: 1,
      memoryGb: 1,
      environment: {
        ...storage.environment,
        MODEL_NAME: 'account-code',
        VERSION_ID: 'bad-1',
        DATA_BLOBS: JSON.stringify((await ctx.invoices.listAccepted()).map((b) => b.name)),
        PIPELINE_DEFINITION: JSON.stringify({
          name: 'account-code',
          label: 'accountCode',
          features: [{ column: 'colour', kind: 'numeric' }],
          forest: { trees: 5, maxFeatures: 'sqrt', minSamplesLeaf: 1, maxDepth: 12 },
        }),
      },
      secureEnvironment: storage.secureEnvironment,
      tags: { stage: 'train' },
    });
    const state = await finished(groupName);
    const logs = await launcher.logs(groupName);
    await launcher.delete(groupName);
    expect(state).toMatchObject({ kind: 'failed', exitCode: EXIT_BAD_INPUT });
    expect(logs).toMatch(
      /^training failed: CONFIG_INVALID: Invalid training job \(1\): PIPELINE_DEFINITION: features\[0\]: unknown column "colour"/m,
    );
    await expect(ctx.registry.listVersions('account-code')).resolves.not.toContainEqual(
      expect.objectContaining({ versionId: 'bad-1' }),
    );
  });
});

describe('declared pipeline through the retrain orchestrator (durable replay)', () => {
  jest.setTimeout(240_000);

  it('plans, trains, compares, promotes and serves account-code with its own knobs; nothing is left running', async () => {
    const host = await LocalHost.create(ctx, clock);
    const nowIso = clock.now().toISOString();
    const request: RetrainRequest = {
      requestId: 'ac-orchestrated',
      modelName: 'account-code',
      kind: 'retrainNow',
      reason: 'test: first account-code model',
      requestedAt: nowIso,
      deadline: new Date(clock.now().getTime() + 3_600_000).toISOString(),
      triggeringBatch: null,
      relativeDrop: null,
    };
    await ctx.pending.submit(request, nowIso);
    expect(
      await startRetrainSingleton(host.client, {
        request,
        timings: orchestrationTimings(ctx),
        generation: 0,
      }),
    ).toBe('started');
    await host.runUntil(new Date(clock.now().getTime() + 6 * 3_600_000), { realTimeStepMs: 100 });

    const [run] = await ctx.runRecords.listRuns('account-code');
    expect(run).toMatchObject({ outcome: 'promoted', modelName: 'account-code' });
    const champion = await ctx.registry.getChampion('account-code');
    expect(champion?.pointer.versionId).toBe(run.challengerVersionId);
    const metadata = await ctx.registry.getVersionMetadata('account-code', run.challengerVersionId as string);
    const accepted = (await ctx.invoices.listAccepted()).map((b) => b.name);
    // The declaration's knobs, read by the orchestrator's activities: 6 batches, 40 trees.
    expect(metadata.dataWindow).toEqual(accepted.slice(-6));
    expect(metadata.hyperparameters).toMatchObject({ trees: 40, label: 'accountCode' });
    expect(run).toMatchObject({ championVersionId: null, championAccuracy: null });
    // Compared on the held-out rows of its window: the very rows the job held out.
    expect(run.challengerAccuracy).toBeCloseTo(metadata.holdoutMetrics.accuracy, 10);

    const serving = await ctx.serving.get('account-code');
    expect(serving?.versionId).toBe(run.challengerVersionId);
    const declared = deployedPipeline(ctx.settings, 'account-code');
    const fresh = [...generateWeek(generator, 8)].slice(0, 50);
    const response = await fetch(`${serving?.endpoint}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...modelApiCredentials('local').headers },
      body: JSON.stringify({
        invoices: fresh.map((row) =>
          onlyColumns(
            row,
            declared.features.map((f) => f.column),
          ),
        ),
      }),
    });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as {
      modelVersion: string;
      predictions: { accountCode: string }[];
    };
    expect(answer.modelVersion).toBe(run.challengerVersionId);
    expect(answer.predictions).toHaveLength(50);

    // The training container is gone; only the serving API runs, and it is stopped here.
    expect((await launcher.list()).map((g) => g.groupName)).toEqual([serving?.groupName]);
    await launcher.delete(serving?.groupName as string);
  });

  it('compares a declared challenger with a single-model champion on the same held-out rows', async () => {
    // vr-1 (single-model, trained above) is the champion of vat-rate; a declared vat-rate model
    // that no longer reads accountCode challenges it.
    await ctx.registry.promote('vat-rate', 'vr-1', { reason: 'test', expectedChampion: null });
    const vat = deployedPipeline(ctx.settings, 'vat-rate');
    const narrowed = {
      ...vat,
      features: vat.features.filter((f) => f.column !== 'accountCode'),
      forest: { ...vat.forest, trees: 6 },
    };
    const window = (await ctx.invoices.listAccepted()).map((b) => b.name).slice(-3);
    const trained = await trainDeclaredModel(narrowed, parsed(window), {
      seed: 3,
      versionId: 'vd-1',
      dataWindow: window,
      threads: 1,
    });
    await ctx.registry.putVersion(trained.model.metadata, trained.artifact);

    const comparison = await compareChallenger(ctx, {
      modelName: 'vat-rate',
      challengerVersionId: 'vd-1',
      dataWindow: window,
    });
    expect(comparison).toMatchObject({ championVersionId: 'vr-1', challengerVersionId: 'vd-1' });
    // The challenger's score is its own held-out score (same rows as its training held out).
    expect(comparison.challengerAccuracy).toBeCloseTo(trained.holdout.accuracy, 10);
    // The champion reads the rows its own way: exactly what the single-model evaluator measures.
    const single = deserializeModel(await ctx.registry.downloadArtifact('vat-rate', 'vr-1'));
    const evaluator = new ChunkedEvaluator(single);
    for await (const record of parsed(window)) {
      if (record.kind === 'accepted' && isHoldoutRow(record.row.invoiceId)) evaluator.add(record.row);
    }
    const report = evaluator.report();
    expect(comparison.championAccuracy).toBe(report.accuracy);
    expect(comparison.holdoutRows).toBe(report.rowsAccepted);
  });
});

async function* parsed(batches: readonly string[]): AsyncGenerator<ParsedRecord> {
  for (const name of batches) {
    yield* parseInvoiceBatch(await ctx.invoices.openAccepted(name), { fileName: name });
  }
}

function onlyColumns(row: InvoiceRow, columns: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(columns.map((c) => [c, row[c as keyof InvoiceRow]]));
}

function issues(body: Record<string, unknown>): { path: string; message: string }[] {
  return (body.error as { issues: { path: string; message: string }[] }).issues;
}

describe('declared pipelines: a batch accepted for one model only', () => {
  jest.setTimeout(180_000);

  it('stays out of the training window of a model that cannot read it', async () => {
    // No vatRatePercent column: the account-code model can learn from it, the VAT model cannot
    // (its trainer would stop at the header), yet the batch is accepted for account-code.
    const name = `b-${weekStartDate(generator, 8)}-no-vat.csv`;
    const csv = [...serializeCsv(generateWeek(generator, 8))]
      .join('')
      .split('\n')
      .map((line) => line.slice(0, Math.max(0, line.lastIndexOf(','))))
      .join('\n');
    expect(csv.split('\n')[0].endsWith('reverseCharge')).toBe(true);
    const etag = await ctx.invoices.upload(name, Readable.from([csv]));
    await ctx.invoices.accept(name, etag);
    const columns = csv.split('\n')[0].split(',');
    await ctx.invoices.writeReport(name, { batchName: name, etag, columns, pipelines: [] });
    const accepted = (await ctx.invoices.listAccepted()).map((b) => b.name);
    expect(accepted).toContain(name);

    const vat = await train('vat-rate', 'vat-partial');
    expect(vat.launched.dataWindow).not.toContain(name);
    expect(vat.launched.dataWindow).toHaveLength(8);
    const accounts = await train('account-code', 'ac-partial');
    expect(accounts.launched.dataWindow).toContain(name);
    expect(accounts.launched.dataWindow).toEqual(
      accepted
        .filter((b) => b !== name)
        .slice(-5)
        .concat(name),
    );
  });
});
