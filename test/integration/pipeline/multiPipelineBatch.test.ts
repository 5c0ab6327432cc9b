import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { composePipeline } from '../../../functions/composition';
import { LocalHost } from '../../../functions/local/localHost';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { loadSettings, type Settings } from '../../../shared/config';
import { generateWeek, type GeneratorOptions } from '../../../shared/invoices/generator';
import type { ParsedRecord } from '../../../shared/invoices/parser';
import { INVOICE_COLUMNS, type InvoiceColumnName, type InvoiceRow } from '../../../shared/invoices/schema';
import { serializeCsv } from '../../../shared/invoices/serialize';
import type { BatchOutcome, PipelineResult } from '../../../shared/pipeline/batchEvaluation';
import { ProcessedBatchLedger } from '../../../shared/pipeline/batchLedger';
import { processBlobEvent } from '../../../shared/pipeline/blobEvents';
import type { PipelineContext } from '../../../shared/pipeline/context';
import { retrainInstanceId } from '../../../shared/pipeline/contracts';
import { sweepIncoming } from '../../../shared/pipeline/incomingSweep';
import { startAzurite, type RunningAzurite } from '../../../shared/storage/azurite';
import type { OrchestrationClient } from '../../../shared/pipeline/orchestrationClient';
import { trainDeclaredModel } from '../../../shared/pipelines/declaredModel';
import { deployedPipelines } from '../../../shared/pipelines/deployedPipelines';
import { createStorageClients } from '../../../shared/storage/clients';
import { RecordingTelemetry } from '../../../shared/telemetry/telemetry';
import {
  FaultPlan,
  faultyOrchestrationClient,
  startStorageFaultProxies,
  type Fault,
  type FaultProxy,
} from '../../support/faultProxy';
import { uniqueName } from '../../support/storage';

/**
 * One upload, every model, through the real Event Grid handler on Azurite with the real durable
 * replay behind the orchestration client: each declared pipeline gets its own record, decision
 * (with its own thresholds), pending request and orchestration; a batch lacking a pipeline's
 * columns is skipped for it, not quarantined; and a worker killed between one pipeline's effects
 * and the next's is resumed by the next delivery or the sweep to the uninterrupted outcome.
 */
jest.setTimeout(900_000);

const T0 = Date.parse('2024-09-02T06:00:00Z');
const TTL_MINUTES = 10;
// The default demo scenario: Finland's VAT reform lands in week 9 (2024-09-02).
const WORLD: GeneratorOptions = { scenario: 'vat-reform', weeks: 12, rowsPerWeek: 1500, seed: 21 };
const week = (index: number): InvoiceRow[] => [...generateWeek(WORLD, index)];
const dir = mkdtempSync(path.join(tmpdir(), 'pipelines-'));

/** Two pipelines; vat-rate here does not read accountCode, so a batch without it still serves it. */
function pipelinesFile(prefix: string): { file: string; vat: string; account: string } {
  const vat = `${prefix}-vat`;
  const account = `${prefix}-account`;
  const common = [
    { column: 'supplierId', kind: 'high-cardinality' },
    { column: 'supplierCountry', kind: 'categorical' },
    { column: 'receiverId', kind: 'categorical' },
    { column: 'currency', kind: 'categorical' },
    { column: 'amountNet', kind: 'numeric' },
    { column: 'lineCount', kind: 'numeric' },
    { column: 'reverseCharge', kind: 'boolean' },
    { column: 'issuedAt', kind: 'date-parts', parts: ['month', 'dayOfWeek'] },
  ];
  const file = path.join(dir, `${prefix}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      pipelines: [
        { name: vat, label: 'vatRatePercent', features: common, forest: { trees: 8 } },
        {
          name: account,
          label: 'accountCode',
          features: common,
          forest: { trees: 8 },
          // Its own knobs: a 48 h green deadline instead of the settings' default.
          retrain: { smallDrop: 0.03, bigDrop: 0.1, greenDeadlineHours: 48 },
        },
      ],
    }),
  );
  return { file, vat, account };
}

function settingsFor(connectionString: string, pipelines: string, hub: string): Settings {
  return loadSettings({
    DataStorage: connectionString,
    MODEL_NAME: 'unused-by-a-pipelines-file',
    PIPELINES_FILE: pipelines,
    TASKHUB_NAME: hub,
    BATCH_CLAIM_TTL_MINUTES: String(TTL_MINUTES),
  });
}

function csvOf(rows: readonly InvoiceRow[], columns: readonly InvoiceColumnName[] = INVOICE_COLUMNS): Buffer {
  if (columns === INVOICE_COLUMNS) return Buffer.from([...serializeCsv(rows)].join(''));
  const lines = rows.map((r) => columns.map((c) => String(r[c])).join(','));
  return Buffer.from([columns.join(','), ...lines].join('\n') + '\n');
}

function blobEvent(name: string) {
  return {
    id: `evt-${name}`,
    eventType: 'Microsoft.Storage.BlobCreated',
    subject: `/blobServices/default/containers/invoices/blobs/incoming/${name}`,
    eventTime: new Date(T0).toISOString(),
    data: { contentLength: 1 },
  };
}

function byModel(outcome: BatchOutcome): Map<string, PipelineResult> {
  if (outcome.kind !== 'evaluated') throw new Error(`expected an evaluation, got ${JSON.stringify(outcome)}`);
  return new Map(outcome.pipelines.map((p) => [p.modelName, p]));
}

const hub = `hub${uniqueName('mp')}`.slice(0, 40);
let connectionString: string;
let host: LocalHost;
let realClient: OrchestrationClient;

async function contextFor(pipelines: string, clock: { ms: number }, storageConnection = connectionString) {
  return composePipeline(settingsFor(storageConnection, pipelines, hub), {
    now: () => new Date(clock.ms),
    telemetry: new RecordingTelemetry(() => new Date(clock.ms)),
    log: () => {},
    ...(storageConnection === connectionString
      ? {}
      : {
          storage: createStorageClients({ DataStorage: storageConnection }, undefined, {
            withoutRetries: true,
          }),
        }),
  });
}

// Its own storage: this file and batchFaults both sweep `incoming/` and take expired claims, and on
// the run's shared Azurite each would re-drive the other's batches under its own task hub.
let azurite: RunningAzurite;

beforeAll(async () => {
  azurite = await startAzurite();
  connectionString = azurite.connectionString;
  const clock = new VirtualClock(new Date(T0));
  const base = await contextFor(pipelinesFile(uniqueName('host')).file, { ms: T0 });
  host = await LocalHost.create({ ...base, now: clock.now }, clock);
  realClient = host.client;
});

afterAll(async () => {
  await azurite?.stop();
});

describe('one upload, every declared model', () => {
  let ctx: PipelineContext;
  let names: { vat: string; account: string };

  beforeAll(async () => {
    const declared = pipelinesFile(uniqueName('p'));
    names = declared;
    ctx = await contextFor(declared.file, { ms: T0 });
    // Champions trained before the reform, one per pipeline, in the declared format.
    const history = [...week(0), ...week(1)];
    const records: ParsedRecord[] = history.map((row, i) => ({ kind: 'accepted', rowNumber: i + 1, row }));
    for (const pipeline of deployedPipelines(ctx.settings).pipelines) {
      const trained = await trainDeclaredModel(pipeline, records, {
        seed: 5,
        versionId: 'v1',
        dataWindow: ['w0.csv', 'w1.csv'],
        threads: 1,
      });
      await ctx.registry.putVersion(trained.model.metadata, trained.artifact);
      await ctx.registry.promote(pipeline.name, 'v1', { reason: 'test champion', expectedChampion: null });
    }
  });

  it('scores one upload with both pipelines: two records, each with its own decision, request and orchestration', async () => {
    const name = `${uniqueName('reform')}.csv`;
    // The reform week moves VAT rates and leaves ledger accounts alone.
    await ctx.invoices.upload(name, Readable.from([csvOf(week(9))]));
    const results = byModel(await processBlobEvent(ctx, realClient, blobEvent(name)));
    const vat = results.get(names.vat);
    const account = results.get(names.account);
    if (vat?.kind !== 'evaluated' || account?.kind !== 'evaluated') throw new Error('both should evaluate');
    expect(vat.record.decision.kind).toBe('retrainNow');
    expect(vat.action).toBe('started');
    expect(account.record.decision).toMatchObject({ kind: 'none', deadline: null });
    expect(account.action).toBe('none');
    expect(vat.record.accuracy).toBeLessThan((account.record.accuracy as number) - 0.1);
    // The parse's CPU is shared, not counted once per model.
    const report = (await ctx.invoices.readReport(name)) as { cpuSeconds: number; pipelines: unknown[] };
    expect(vat.record.cpuSeconds + account.record.cpuSeconds).toBeCloseTo(report.cpuSeconds, 9);
    expect(report.pipelines).toHaveLength(2);

    expect((await ctx.evaluations.list(names.vat)).map((r) => r.batchName)).toEqual([name]);
    expect((await ctx.evaluations.list(names.account)).map((r) => r.batchName)).toEqual([name]);
    expect(await ctx.pending.get(names.vat)).toMatchObject({ request: { modelName: names.vat } });
    expect(await ctx.pending.get(names.account)).toBeNull();
    expect(await realClient.status(retrainInstanceId(names.vat))).not.toBeNull();
    expect(await realClient.status(retrainInstanceId(names.account))).toBeNull();
    expect((await ctx.invoices.listAccepted()).some((b) => b.name === name)).toBe(true);

    // A repeated delivery is a duplicate: nothing counted twice, no second orchestration.
    expect(await processBlobEvent(ctx, realClient, blobEvent(name))).toMatchObject({ kind: 'gone' });
    expect(await ctx.evaluations.list(names.vat)).toHaveLength(1);
    const day = await ctx.runRecords.listDailyAggregates(names.account, '2024-09-01', '2024-09-03');
    expect(day.reduce((sum, d) => sum + d.evaluations, 0)).toBe(1);
  });

  it('skips a pipeline whose label the batch lacks, with the reason, and evaluates the others', async () => {
    const name = `${uniqueName('noaccount')}.csv`;
    const columns = INVOICE_COLUMNS.filter((c) => c !== 'accountCode');
    await ctx.invoices.upload(name, Readable.from([csvOf(week(2), columns)]));
    const outcome = await processBlobEvent(ctx, realClient, blobEvent(name));
    const results = byModel(outcome);
    expect(results.get(names.account)).toEqual({
      kind: 'skipped',
      modelName: names.account,
      reason: 'batch has no accountCode column (the label)',
    });
    const vat = results.get(names.vat);
    expect(vat).toMatchObject({ kind: 'evaluated', record: { batchName: name, rowsAccepted: 1500 } });
    expect((await ctx.invoices.listAccepted()).some((b) => b.name === name)).toBe(true);
    expect((await ctx.evaluations.list(names.account)).map((r) => r.batchName)).not.toContain(name);
    const report = (await ctx.invoices.readReport(name)) as { columns: string[]; pipelines: unknown[] };
    expect(report.columns).toEqual(columns);
    expect(report.pipelines).toContainEqual({
      kind: 'skipped',
      modelName: names.account,
      reason: 'batch has no accountCode column (the label)',
    });
  });

  it('quarantines a batch that no pipeline can use, naming each reason', async () => {
    const name = `${uniqueName('nolabels')}.csv`;
    const columns = INVOICE_COLUMNS.filter((c) => c !== 'accountCode' && c !== 'vatRatePercent');
    await ctx.invoices.upload(name, Readable.from([csvOf(week(2).slice(0, 50), columns)]));
    const outcome = await processBlobEvent(ctx, realClient, blobEvent(name));
    expect(outcome).toMatchObject({ kind: 'quarantined', code: 'VALIDATION_FAILED' });
    if (outcome.kind !== 'quarantined') return;
    expect(outcome.reason).toContain(`${names.vat}: batch has no vatRatePercent column (the label)`);
    expect(outcome.reason).toContain(`${names.account}: batch has no accountCode column (the label)`);
  });
});

describe('faults between one pipeline and the next', () => {
  let plan: FaultPlan;
  let proxies: FaultProxy[] = [];
  let proxied: string;

  beforeAll(async () => {
    plan = new FaultPlan();
    const started = await startStorageFaultProxies(connectionString, plan);
    proxies = started.proxies;
    proxied = started.connectionString;
  });

  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
  });

  /** Both models' records, requests and orchestrations after the batch, names masked. */
  async function endState(ctx: PipelineContext, batch: string, etag: string, models: string[]) {
    const mask = (text: string) =>
      models
        .reduce((t, m, i) => t.split(m).join(`<model${i}>`), text.split(batch).join('<batch>'))
        .replace(/[0-9a-f]{16}/g, '<id>');
    const perModel = [];
    for (const model of models) {
      const daily = await ctx.runRecords.listDailyAggregates(model, '2024-09-01', '2024-09-03');
      const pending = await ctx.pending.get(model, 'current');
      perModel.push({
        records: (await ctx.evaluations.list(model)).map((r) =>
          mask(JSON.stringify({ ...r, etag: '', cpuSeconds: 0, wallSeconds: 0 })),
        ),
        evaluationsCounted: daily.reduce((sum, d) => sum + d.evaluations, 0),
        pending: pending ? mask(JSON.stringify({ ...pending.request, state: pending.state })) : null,
        orchestration: (await realClient.status(retrainInstanceId(model)))?.runtimeStatus ?? null,
      });
    }
    const claim = await ctx.storage
      .table('processedbatches')
      .getEntity<{ status: string; body: string }>('batch', ProcessedBatchLedger.keyOf(batch, etag));
    return {
      incoming: (await ctx.invoices.listIncoming()).includes(batch),
      accepted: (await ctx.invoices.listAccepted()).some((b) => b.name === batch),
      perModel,
      claim: { status: claim.status, outcome: mask((JSON.parse(claim.body) as { outcome: string }).outcome) },
      unfinishedClaims: (await ctx.ledger.unfinishedFor(batch)).length,
    };
  }

  /** Upload, a first delivery under the fault, then redeliveries and the sweep until it is done. */
  async function runCase(fault: Fault) {
    const clock = { ms: T0 };
    const declared = pipelinesFile(uniqueName('f'));
    const models = [declared.vat, declared.account];
    const ctx = await contextFor(declared.file, clock);
    const faulty = await contextFor(declared.file, clock, proxied);
    const client = faultyOrchestrationClient(realClient, plan);
    const batch = `${uniqueName('fault')}.csv`;
    // No champions: each pipeline asks for its first training, so both act (request + start).
    const etag = await ctx.invoices.upload(batch, Readable.from([csvOf(week(1).slice(0, 200))]));
    plan.arm(fault);
    await processBlobEvent(faulty, client, blobEvent(batch)).catch((e: unknown) => e);
    const fired = plan.fired;
    const calls = plan.calls.slice();
    plan.disarm();
    for (let attempt = 0; attempt < 4; attempt++) {
      const again = await processBlobEvent(faulty, client, blobEvent(batch)).catch((e: unknown) => e);
      if (!(again instanceof Error)) break;
      clock.ms += (TTL_MINUTES + 1) * 60_000;
      await sweepIncoming(faulty, client);
    }
    return { fired, calls, state: await endState(ctx, batch, etag, models) };
  }

  it('a kill after any effect, or any call failing once, resumes to the uninterrupted outcome for both models', async () => {
    const reference = await runCase({ kind: 'none' });
    expect(reference.state.perModel.map((m) => [m.records.length, m.evaluationsCounted])).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect(reference.state.perModel.every((m) => m.pending !== null && m.orchestration !== null)).toBe(true);
    expect(reference.state).toMatchObject({ incoming: false, accepted: true, unfinishedClaims: 0 });
    const effects = reference.calls.filter((c) => c.effect).length;
    // The effects of the second pipeline come after the first's: the kills land between them too.
    const starts = reference.calls.filter((c) => c.label === 'durable startNew').length;
    expect(starts).toBe(2);
    const faults: Fault[] = [
      ...Array.from({ length: effects }, (_, i): Fault => ({ kind: 'kill', afterEffect: i })),
      ...reference.calls.map((_, i): Fault => ({ kind: 'fail', atCall: i, status: 503 })),
    ];
    const problems: string[] = [];
    for (const fault of faults) {
      const run = await runCase(fault);
      const same = JSON.stringify(run.state) === JSON.stringify(reference.state);
      if (!same || !run.fired) {
        problems.push(
          `${JSON.stringify(fault)} (${run.calls[run.calls.length - 1]?.label ?? '?'}): fired=${run.fired}` +
            (same ? '' : ` got ${JSON.stringify(run.state)}`),
        );
      }
    }
    console.log(
      `faults between pipelines: ${faults.length} cases, ${faults.length - problems.length} as the reference`,
    );
    expect(problems).toEqual([]);
    expect(faults.length).toBeGreaterThan(20);
  });
});
