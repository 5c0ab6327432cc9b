import { Readable } from 'node:stream';
import { loadSettings, type Settings } from '../../../shared/config';
import { composePipeline } from '../../../functions/composition';
import { LocalHost } from '../../../functions/local/localHost';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { createStorageClients } from '../../../shared/storage/clients';
import { generateWeek } from '../../../shared/invoices/generator';
import { serializeCsv } from '../../../shared/invoices/serialize';
import { RecordingTelemetry, METRIC } from '../../../shared/telemetry/telemetry';
import type { PipelineContext } from '../../../shared/pipeline/context';
import { processBlobEvent } from '../../../shared/pipeline/blobEvents';
import { evaluatedRecords, type BatchOutcome } from '../../../shared/pipeline/batchEvaluation';
import { sweepIncoming } from '../../../shared/pipeline/incomingSweep';
import { ProcessedBatchLedger } from '../../../shared/pipeline/batchLedger';
import { retrainInstanceId } from '../../../shared/pipeline/contracts';
import { safeNameFor } from '../../../shared/pipeline/batchNames';
import type { OrchestrationClient } from '../../../shared/pipeline/orchestrationClient';
import { uniqueName } from '../../support/storage';
import {
  FaultPlan,
  faultyOrchestrationClient,
  startStorageFaultProxies,
  type Fault,
  type FaultProxy,
} from '../../support/faultProxy';

/**
 * The batch path under faults, on Azurite with the real handler (the Event Grid entry point) and
 * the real durable-functions replay behind the orchestration client. Faults are injected below our
 * code: a proxy in front of Azurite answers a chosen storage call with 503/409/412 or lets an
 * effect complete and then "kills" the worker (every later call fails), and a wrapper of the
 * Durable client does the same for its calls. After each fault the batch is delivered again, as
 * Event Grid would, and once the lease has run out the sweep runs; the end state must equal the
 * uninterrupted run's, with every row counted once and nothing left in incoming/ or in a claim.
 */
jest.setTimeout(600_000);

const T0 = Date.parse('2024-09-02T06:00:00Z');
const TTL_MINUTES = 10;
const csv = Buffer.from(
  [
    ...serializeCsv(
      generateWeek({ scenario: 'stable', weeks: 1, rowsPerWeek: 60, seed: 5, startDate: '2024-08-26' }, 0),
    ),
  ].join(''),
);
const garbage = Buffer.from([0, 1, 2, 3, 255, 254, 0, 0, 9]);

let plan: FaultPlan;
let proxies: FaultProxy[] = [];
let base: PipelineContext;
let faultyBase: PipelineContext;
let host: LocalHost;
let realClient: OrchestrationClient;
let telemetry: RecordingTelemetry;
const containerName = uniqueName('faults');

function settingsFor(connectionString: string, modelName = 'base'): Settings {
  return loadSettings({
    DataStorage: connectionString,
    MODEL_NAME: modelName,
    TASKHUB_NAME: `hub${containerName.replace(/[^a-z0-9]/g, '')}`.slice(0, 40),
    BATCH_CLAIM_TTL_MINUTES: String(TTL_MINUTES),
  });
}

beforeAll(async () => {
  const connectionString = process.env.AZURITE_TEST_CONNECTION_STRING as string;
  plan = new FaultPlan();
  const started = await startStorageFaultProxies(connectionString, plan);
  proxies = started.proxies;
  telemetry = new RecordingTelemetry(() => new Date(T0));
  const clock = new VirtualClock(new Date(T0));
  const settings = settingsFor(connectionString);
  base = await composePipeline(settings, { now: clock.now, telemetry, log: () => {} });
  host = await LocalHost.create(base, clock);
  realClient = host.client;
  const proxied = started.connectionString;
  faultyBase = await composePipeline(settingsFor(proxied), {
    now: clock.now,
    telemetry,
    log: () => {},
    storage: createStorageClients({ DataStorage: proxied }, undefined, { withoutRetries: true }),
  });
});

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
});

/** A context for one case: its own model (so its own pending request and orchestration) and clock. */
function caseContext(ctx: PipelineContext, modelName: string, clock: { ms: number }): PipelineContext {
  return { ...ctx, settings: { ...ctx.settings, MODEL_NAME: modelName }, now: () => new Date(clock.ms) };
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

/** The records a batch leaves, with the per-run names and ids masked so two runs compare. */
async function endState(ctx: PipelineContext, name: string, etag: string) {
  const mask = (text: string) =>
    text
      .split(name)
      .join('<batch>')
      .split(ctx.settings.MODEL_NAME)
      .join('<model>')
      .replace(/[0-9a-f]{16}/g, '<id>');
  const evaluations = (await ctx.evaluations.list(ctx.settings.MODEL_NAME)).map((r) =>
    mask(JSON.stringify({ ...r, etag: '', cpuSeconds: 0, wallSeconds: 0 })),
  );
  let report: string | null = null;
  try {
    const r = (await ctx.invoices.readReport(name)) as Record<string, unknown>;
    report = mask(JSON.stringify({ ...r, etag: '', cpuSeconds: 0, wallSeconds: 0 }));
  } catch {
    report = null;
  }
  const daily = await ctx.runRecords.listDailyAggregates(ctx.settings.MODEL_NAME, '2024-09-01', '2024-09-03');
  const pending = await ctx.pending.get(ctx.settings.MODEL_NAME, 'current');
  const next = await ctx.pending.get(ctx.settings.MODEL_NAME, 'next');
  const status = await realClient.status(retrainInstanceId(ctx.settings.MODEL_NAME));
  const claim = await ctx.storage
    .table('processedbatches')
    .getEntity<{ status: string; body: string }>('batch', ProcessedBatchLedger.keyOf(name, etag));
  const quarantined = await ctx.invoices.listQuarantined();
  return {
    incoming: (await ctx.invoices.listIncoming()).includes(name),
    accepted: (await ctx.invoices.listAccepted()).some((b) => b.name === name),
    quarantined: quarantined.includes(name),
    evaluations,
    report,
    evaluationsCounted: daily.reduce((sum, d) => sum + d.evaluations, 0),
    pending: pending ? mask(JSON.stringify({ ...pending.request, state: pending.state })) : null,
    next: next ? mask(JSON.stringify(next.request)) : null,
    orchestration: status?.runtimeStatus ?? null,
    claim: { status: claim.status, outcome: (JSON.parse(claim.body) as { outcome: string }).outcome },
    unfinishedClaims: (await ctx.ledger.unfinishedFor(name)).length,
  };
}

/**
 * Runs one case: upload, first delivery under the fault, then redeliveries and (after the lease)
 * the sweep until the delivery is finished. Returns the end state and whether the fault fired.
 */
async function runCase(caseName: string, content: Buffer, fault: Fault) {
  const clock = { ms: T0 };
  const modelName = uniqueName('m').slice(0, 20);
  const batchName = `${caseName}.csv`;
  const ctx = caseContext(base, modelName, clock);
  const faulty = caseContext(faultyBase, modelName, clock);
  const client = faultyOrchestrationClient(realClient, plan);
  const etag = await ctx.invoices.upload(batchName, Readable.from([content]));
  plan.arm(fault);
  const first = await processBlobEvent(faulty, client, blobEvent(batchName)).catch((e: unknown) => e);
  const fired = plan.fired;
  const calls = plan.calls.slice();
  plan.disarm();
  for (let attempt = 0; attempt < 4; attempt++) {
    const again = await processBlobEvent(faulty, client, blobEvent(batchName)).catch((e: unknown) => e);
    if (!(again instanceof Error)) break;
    // Another worker's claim (the killed one) holds the batch: the sweep takes it once it expires.
    clock.ms += (TTL_MINUTES + 1) * 60_000;
    await sweepIncoming(faulty, client);
  }
  return { first, fired, calls, state: await endState(ctx, batchName, etag) };
}

describe('batch path: fault injection at every effect boundary', () => {
  const counts = { cases: 0, matching: 0, mismatches: [] as string[] };
  afterAll(() => {
    // Figures for the closing note.
    console.log(
      `fault-injection: ${counts.cases} cases run, ${counts.matching} ended with the reference records` +
        (counts.mismatches.length ? `; mismatches: ${counts.mismatches.join(', ')}` : ''),
    );
  });

  for (const scenario of [
    { label: 'valid batch (evaluated, retrain requested, orchestration started)', content: csv },
    { label: 'unreadable batch (quarantined)', content: garbage },
  ]) {
    it(`${scenario.label}: every kill point and every call failing once with 503/409/412 ends as the reference`, async () => {
      const reference = await runCase(uniqueName('ref'), scenario.content, { kind: 'none' });
      expect(reference.first).not.toBeInstanceOf(Error);
      expect(reference.state.incoming).toBe(false);
      expect(reference.state.unfinishedClaims).toBe(0);
      const effects = reference.calls.filter((c) => c.effect).length;
      const faults: Fault[] = [
        ...Array.from({ length: effects }, (_, i): Fault => ({ kind: 'kill', afterEffect: i })),
        ...reference.calls.flatMap((_, i) =>
          ([503, 409, 412] as const).map((status): Fault => ({ kind: 'fail', atCall: i, status })),
        ),
      ];
      const problems: string[] = [];
      for (const [i, fault] of faults.entries()) {
        const run = await runCase(uniqueName(`c${i}-`), scenario.content, fault);
        counts.cases += 1;
        const same = JSON.stringify(run.state) === JSON.stringify(reference.state);
        if (same && run.fired) counts.matching += 1;
        else {
          const where =
            fault.kind === 'none'
              ? 'none'
              : fault.kind === 'kill'
                ? `kill after effect ${fault.afterEffect}`
                : `${fault.status} at call ${fault.atCall}`;
          problems.push(`${where} (${run.calls[run.calls.length - 1]?.label ?? '?'}): fired=${run.fired}`);
          if (!same) problems.push(JSON.stringify({ got: run.state, want: reference.state }));
          counts.mismatches.push(`${scenario.label.split(' ')[0]}: ${where}`);
        }
      }
      expect(problems).toEqual([]);
      expect(faults.length).toBeGreaterThan(20);
    });
  }
});

describe('batch path: the incoming sweep', () => {
  it('re-drives a blob whose event never came once it is older than INCOMING_STALE_MINUTES', async () => {
    const clock = { ms: Date.now() };
    const ctx = caseContext(base, uniqueName('sw').slice(0, 20), clock);
    const name = `${uniqueName('lost-event')}.csv`;
    await ctx.invoices.upload(name, Readable.from([csv]));
    const early = await sweepIncoming(ctx, realClient);
    expect(early.outcomes.filter((o) => o.batchName === name)).toEqual([]);
    clock.ms += (ctx.settings.INCOMING_STALE_MINUTES + 1) * 60_000;
    const late = await sweepIncoming(ctx, realClient);
    expect(late.outcomes.filter((o) => o.batchName === name)).toEqual([
      { batchName: name, kind: 'evaluated' },
    ]);
    expect(late.failures).toEqual([]);
    expect((await ctx.invoices.listAccepted()).some((b) => b.name === name)).toBe(true);
    expect(await ctx.invoices.listIncoming()).not.toContain(name);
  });
});

describe('batch path: hostile names', () => {
  it('every blob under incoming/ ends in accepted/ or in quarantine/ with a reason; none blocks another', async () => {
    const prefix = uniqueName('h');
    const names = [
      `${prefix} week 1.csv`,
      `${prefix}-wéek-ü-日本.csv`,
      `${prefix}/sub/folder.csv`,
      `.${prefix}-hidden.csv`,
      `${prefix}-${'x'.repeat(230)}.csv`,
      `${prefix}-a..b.csv`,
      ' ',
      `${prefix}-new\nline.csv`,
      `${prefix}-tab\tname.csv`,
      `${prefix}-del\u007fname.csv`,
      `${prefix}-c1\u0085name.csv`,
      `${prefix}//empty-segment.csv`,
      `${prefix}-trailing.`,
    ];
    const clock = { ms: T0 };
    const ctx = caseContext(base, uniqueName('hm').slice(0, 20), clock);
    const container = ctx.invoices.container;
    for (const name of names) {
      await container.getBlockBlobClient(`incoming/${name}`).uploadData(csv);
    }
    // A `..` segment is resolved by the client before it is sent: it never lands in incoming/.
    await container.getBlockBlobClient(`incoming/${prefix}-dir/../${prefix}-dots.csv`).uploadData(csv);
    names.push(`${prefix}-dots.csv`);

    const outcomes: BatchOutcome[] = [];
    for (const name of names) outcomes.push(await processBlobEvent(ctx, realClient, blobEvent(name)));
    const incoming = await ctx.invoices.listIncoming();
    const accepted = new Set((await ctx.invoices.listAccepted()).map((b) => b.name));
    const quarantined = new Set(await ctx.invoices.listQuarantined());
    const results = await Promise.all(
      names.map(async (name, i) => {
        const where = accepted.has(name)
          ? 'accepted'
          : quarantined.has(name)
            ? 'quarantine'
            : quarantined.has(safeNameFor(name))
              ? 'quarantine (safe name)'
              : 'nowhere';
        let reason: { originalName?: string; code?: string } | null = null;
        if (where.startsWith('quarantine')) {
          reason = (await ctx.invoices.quarantineReason(
            where === 'quarantine' ? name : safeNameFor(name),
          )) as {
            originalName?: string;
            code?: string;
          };
        }
        return { name: JSON.stringify(name).slice(0, 60), outcome: outcomes[i].kind, where, reason };
      }),
    );
    console.log(
      'hostile names:\n' +
        results
          .map((r) => `  ${r.name.padEnd(62)} ${r.outcome.padEnd(12)} ${r.where} ${r.reason?.code ?? ''}`)
          .join('\n'),
    );
    expect(incoming.filter((n) => names.includes(n))).toEqual([]);
    expect(results.filter((r) => r.where === 'nowhere')).toEqual([]);
    for (const [i, r] of results.entries()) {
      if (r.where === 'quarantine (safe name)') {
        expect(r.reason).toMatchObject({ originalName: names[i], code: 'BATCH_NAME_INVALID' });
      }
    }
    // Odd but legal names are ordinary batches.
    for (const legal of [0, 1, 2, 3, 4, 5]) expect(results[legal].where).toBe('accepted');
    // Control characters, blank names, empty segments and a trailing dot are illegal.
    for (const illegal of [6, 7, 8, 9, 10, 11, 12])
      expect(results[illegal].where).toBe('quarantine (safe name)');
    const claims = await ctx.ledger.listStale(new Date(T0 + 86_400_000).toISOString());
    expect(claims.filter((c) => names.includes(c.name))).toEqual([]);
  });

  it('an event quarantines a name whose control character breaks Azurite listings, without listing', async () => {
    const prefix = uniqueName('ctl');
    const clock = { ms: T0 };
    const ctx = caseContext(base, uniqueName('cm').slice(0, 20), clock);
    const bad = `${prefix}-esc\u001bname.csv`;
    await ctx.invoices.container.getBlockBlobClient(`incoming/${bad}`).uploadData(csv);
    // Its event quarantines it without any listing; afterwards listings work again.
    await expect(processBlobEvent(ctx, realClient, blobEvent(bad))).resolves.toMatchObject({
      kind: 'quarantined',
    });
    expect(await ctx.invoices.quarantineReason(safeNameFor(bad))).toMatchObject({ originalName: bad });
    await expect(ctx.invoices.listIncoming()).resolves.toBeInstanceOf(Array);
  });
});

describe('batch path: CPU counted once', () => {
  it("records one function.cpu_seconds per invocation: the wrapper's, which includes the scoring", async () => {
    const clock = new VirtualClock(new Date(T0));
    const recording = new RecordingTelemetry(clock.now);
    const connectionString = process.env.AZURITE_TEST_CONNECTION_STRING as string;
    const modelName = uniqueName('cpu').slice(0, 20);
    const ctx = await composePipeline(settingsFor(connectionString, modelName), {
      now: clock.now,
      telemetry: recording,
      log: () => {},
    });
    const cpuHost = await LocalHost.create(ctx, clock);
    const name = `${uniqueName('cpu')}.csv`;
    await ctx.invoices.upload(name, Readable.from([csv]));
    const outcomes = (await cpuHost.deliverBlobEvents()).filter((o) => o.batchName === name);
    expect(outcomes).toHaveLength(1);
    const evaluated = outcomes[0];
    if (evaluated.kind !== 'evaluated') throw new Error(`expected an evaluation, got ${evaluated.kind}`);
    const cpu = recording.records.filter(
      (r) =>
        r.kind === 'metric' &&
        r.name === METRIC.functionCpuSeconds &&
        r.attributes.function === 'invoiceBatchEvaluator',
    );
    // Earlier tests leave nothing in incoming/, so this was the only invocation: one figure, not two.
    expect(cpu).toHaveLength(1);
    const batchCpu = recording.records.filter(
      (r) => r.name === METRIC.functionCpuSeconds && r.attributes.batch === name,
    );
    expect(batchCpu).toEqual([]);
    expect(evaluatedRecords(evaluated)[0].cpuSeconds).toBeGreaterThan(0);
  });
});
