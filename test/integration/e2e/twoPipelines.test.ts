import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { loadSettings } from '../../../shared/config';
import { startAzurite, type RunningAzurite } from '../../../shared/storage/azurite';
import { composePipeline } from '../../../functions/composition';
import { LocalHost } from '../../../functions/local/localHost';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { predictionInput } from '../../../functions/local/demoModels';
import { LocalLauncher, defaultEntrypoints } from '../../../shared/containers/localLauncher';
import { generateWeek, weekStartDate, type GeneratorOptions } from '../../../shared/invoices/generator';
import { serializeCsv } from '../../../shared/invoices/serialize';
import { RecordingTelemetry } from '../../../shared/telemetry/telemetry';
import type { PipelineContext } from '../../../shared/pipeline/context';
import { retrainInstanceId } from '../../../shared/pipeline/contracts';
import { statusReport } from '../../../shared/pipeline/statusReport';
import { modelApiCredentials } from '../../../shared/modelApi/credentials';
import { deployedPipelines } from '../../../shared/pipelines/deployedPipelines';
import { VAT_RATE_FEATURES, type PipelineDefinition } from '../../../shared/pipelines/manifest';
import { builtRepoRoot } from '../../support/builtRepo';
import { isProcessAlive } from '../../../functions/local/processLedger';

/**
 * Two declared pipelines on one deployment, on real parts: Azurite, the real batch evaluator and
 * orchestrator (durable-functions replay through the local host), the compiled training job and
 * model API as child processes. One upload is evaluated by both models; after the VAT change only
 * the VAT-rate model retrains, the account-code model keeps its champion; each has its own
 * orchestration, registry folder and serving API, and nothing is left running.
 */
const root = builtRepoRoot();

// Week 0 ends just before the 2024-09-01 VAT change; week 1 is entirely after it. The bookings
// (accountCode) follow the same habits in both weeks.
const generator: GeneratorOptions = {
  scenario: 'vat-reform',
  weeks: 2,
  rowsPerWeek: 1500,
  seed: 11,
  startDate: '2024-08-26',
};

const PIPELINES = {
  pipelines: [
    { name: 'vat-rate', label: 'vatRatePercent', features: VAT_RATE_FEATURES },
    {
      name: 'account-code',
      label: 'accountCode',
      features: [
        { column: 'supplierId', kind: 'high-cardinality' },
        { column: 'receiverId', kind: 'high-cardinality' },
        { column: 'supplierCountry', kind: 'categorical' },
        { column: 'amountNet', kind: 'numeric' },
        { column: 'lineCount', kind: 'numeric' },
        { column: 'issuedAt', kind: 'date-parts', parts: ['dayOfWeek'] },
      ],
      // Its own thresholds: week-to-week noise of a 1,500-row batch is not drift for this model.
      retrain: { smallDrop: 0.1, bigDrop: 0.25 },
    },
  ],
};

let azurite: RunningAzurite;
let dir: string;
let launcher: LocalLauncher | null = null;
const livePids = new Set<number>();
beforeEach(async () => {
  azurite = await startAzurite({ extentMemoryLimitMb: 256 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'two-pipelines-'));
});
afterEach(async () => {
  await launcher?.close();
  launcher = null;
  await azurite?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function upload(ctx: PipelineContext, week: number): Promise<string> {
  const name = `b-${weekStartDate(generator, week)}.csv`;
  await ctx.invoices.upload(name, Readable.from(serializeCsv(generateWeek(generator, week))));
  return name;
}

/** /predict on a model's serving API with the run's key; its answer carries the model's label. */
async function predict(ctx: PipelineContext, pipeline: PipelineDefinition) {
  const serving = await ctx.serving.get(pipeline.name);
  expect(serving?.endpoint).toBeDefined();
  const rows = [...generateWeek(generator, 1)].slice(0, 3);
  const response = await fetch(`${serving!.endpoint}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...modelApiCredentials('local').headers },
    body: JSON.stringify({ invoices: rows.map((row) => predictionInput(pipeline, row)) }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { modelVersion: string; predictions: Record<string, unknown>[] };
  expect(body.predictions).toHaveLength(3);
  for (const p of body.predictions) expect(p[pipeline.label]).toBeDefined();
  return { versionId: serving!.versionId, modelVersion: body.modelVersion };
}

describe('two declared pipelines end to end on Azurite with local containers', () => {
  jest.setTimeout(300_000);

  it('one upload is evaluated by both; only the drifted model retrains; both serve; registries separate; nothing left running', async () => {
    const pipelinesFile = path.join(dir, 'pipelines.json');
    fs.writeFileSync(pipelinesFile, JSON.stringify(PIPELINES));
    const settings = loadSettings({
      DataStorage: azurite.connectionString,
      PIPELINES_FILE: pipelinesFile,
      TASKHUB_NAME: 'hubtwopipelines',
      CARBON_POLL_SCHEDULE: '0 0 * * * *',
      CONTAINER_POLL_SECONDS: '2',
      HEALTH_CHECK_INTERVAL_SECONDS: '1',
      HEALTH_CHECK_ATTEMPTS: '10',
      FOREST_TREES: '10',
    });
    const [vat, account] = deployedPipelines(settings).pipelines;
    expect([vat.name, account.name]).toEqual(['vat-rate', 'account-code']);
    const clock = new VirtualClock(new Date('2024-09-02T06:00:00Z'));
    launcher = new LocalLauncher({
      entrypoints: defaultEntrypoints(settings, root),
      processes: {
        started: (_group, pid) => livePids.add(pid),
        ended: (_group, pid) => livePids.delete(pid),
      },
    });
    const startedPids = new Set<number>();
    const telemetry = new RecordingTelemetry(clock.now);
    const ctx = await composePipeline(settings, { now: clock.now, launcher, telemetry, log: () => {} });
    const host = await LocalHost.create(ctx, clock, {
      onActivity: async () => {
        for (const pid of livePids) startedPids.add(pid);
      },
    });
    const settle = (hours = 6) =>
      host.runUntil(new Date(clock.now().getTime() + hours * 3_600_000), { realTimeStepMs: 100 });

    // One upload, two models: each gets its own evaluation record and decision (no champion yet),
    // its own orchestration, its own first champion and serving API.
    const first = await upload(ctx, 0);
    await settle();
    for (const model of [vat.name, account.name]) {
      const [evaluation] = await ctx.evaluations.list(model);
      expect(evaluation).toMatchObject({ batchName: first, decision: { kind: 'retrainNow' } });
      expect((await host.runtime.getStatus(retrainInstanceId(model)))?.runtimeStatus).toBe('Completed');
      expect((await ctx.runRecords.listRuns(model)).map((r) => r.outcome)).toEqual(['promoted']);
    }
    const vatFirst = (await ctx.registry.getChampion(vat.name))!.pointer.versionId;
    const accountFirst = (await ctx.registry.getChampion(account.name))!.pointer.versionId;
    expect((await predict(ctx, vat)).modelVersion).toBe(vatFirst);
    expect((await predict(ctx, account)).modelVersion).toBe(accountFirst);

    // After the VAT change: the VAT-rate model drops and retrains, the account-code model does not.
    const second = await upload(ctx, 1);
    await settle();
    const vatDecisions = await ctx.evaluations.list(vat.name);
    const accountDecisions = await ctx.evaluations.list(account.name);
    expect(vatDecisions.map((e) => [e.batchName, e.decision.kind])).toEqual([
      [first, 'retrainNow'],
      [second, 'retrainNow'],
    ]);
    expect(accountDecisions.map((e) => [e.batchName, e.decision.kind])).toEqual([
      [first, 'retrainNow'],
      [second, 'none'],
    ]);
    expect(accountDecisions[1].accuracy).toBeGreaterThan(0.5);
    expect((await ctx.runRecords.listRuns(vat.name)).map((r) => r.outcome)).toEqual(['promoted', 'promoted']);
    expect((await ctx.runRecords.listRuns(account.name)).map((r) => r.outcome)).toEqual(['promoted']);
    const vatSecond = (await ctx.registry.getChampion(vat.name))!.pointer.versionId;
    expect(vatSecond).not.toBe(vatFirst);
    expect((await ctx.registry.getChampion(account.name))!.pointer.versionId).toBe(accountFirst);
    // Both APIs answer, each with its own model's champion.
    expect((await predict(ctx, vat)).modelVersion).toBe(vatSecond);
    expect((await predict(ctx, account)).modelVersion).toBe(accountFirst);

    // Registry folders are separate: every blob sits under its model's folder, versions never shared.
    const blobs: string[] = [];
    for await (const blob of ctx.storage.blobs
      .getContainerClient(ctx.registry.containerName)
      .listBlobsFlat()) {
      blobs.push(blob.name);
    }
    expect(blobs.every((name) => name.startsWith('vat-rate/') || name.startsWith('account-code/'))).toBe(
      true,
    );
    const vatVersions = (await ctx.registry.listVersions(vat.name)).map((v) => v.versionId);
    const accountVersions = (await ctx.registry.listVersions(account.name)).map((v) => v.versionId);
    expect(vatVersions).toHaveLength(2);
    expect(accountVersions).toEqual([accountFirst]);
    expect(blobs).toContain(`vat-rate/champion.json`);
    expect(blobs).toContain(`account-code/champion.json`);
    expect(blobs.filter((b) => b.startsWith('account-code/versions/'))).toEqual(
      expect.arrayContaining([`account-code/versions/${accountFirst}/model.json`]),
    );

    // The status endpoint shows each model on its own.
    const status = await statusReport(ctx);
    expect(status.models.map((m) => [m.model, m.champion?.versionId, m.pending])).toEqual([
      [vat.name, vatSecond, []],
      [account.name, accountFirst, []],
    ]);

    // Only the two serving APIs run; stopping them leaves no container and no process.
    const serving = await Promise.all([ctx.serving.get(vat.name), ctx.serving.get(account.name)]);
    expect((await launcher.list()).map((g) => g.groupName).sort()).toEqual(
      serving.map((s) => s!.groupName).sort(),
    );
    for (const s of serving) await launcher.delete(s!.groupName);
    expect(await launcher.list()).toEqual([]);
    expect(livePids.size).toBe(0);
    expect(startedPids.size).toBeGreaterThanOrEqual(4);
    expect([...startedPids].filter(isProcessAlive)).toEqual([]);
  });
});
