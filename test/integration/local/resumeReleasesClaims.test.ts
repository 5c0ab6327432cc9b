import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { loadSettings, type Settings } from '../../../shared/config';
import { composePipeline } from '../../../functions/composition';
import { LocalHost } from '../../../functions/local/localHost';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { hostIdentity, isDeadHost } from '../../../functions/local/processLedger';
import { createStorageClients } from '../../../shared/storage/clients';
import { generateWeek } from '../../../shared/invoices/generator';
import { serializeCsv } from '../../../shared/invoices/serialize';
import { RecordingTelemetry } from '../../../shared/telemetry/telemetry';
import type { PipelineContext } from '../../../shared/pipeline/context';
import { processIncomingBatch } from '../../../shared/pipeline/batchEvaluation';
import { ProcessedBatchLedger } from '../../../shared/pipeline/batchLedger';
import { retrainInstanceId } from '../../../shared/pipeline/contracts';
import type { OrchestrationClient } from '../../../shared/pipeline/orchestrationClient';
import { uniqueName } from '../../support/storage';
import {
  FaultPlan,
  faultyOrchestrationClient,
  startStorageFaultProxies,
  type FaultProxy,
} from '../../support/faultProxy';

/**
 * A local host killed while a batch was being evaluated (claim taken, evaluation half done), then
 * `--resume`: the resumed run knows the killed one is dead, so it releases that run's claims and
 * the batch is re-driven at once, at the same (virtual) time, to the same records, decision and
 * orchestration as an uninterrupted run. Before, the batch waited for its claim's 10-minute lease
 * and its retrain started later than the reference's. The kill is injected below our code: a proxy
 * in front of Azurite lets the claim and the first journal step complete and then fails every
 * later call, as nothing runs in a dead process; the dead run's identity is a real process that
 * has exited.
 */
jest.setTimeout(120_000);

const T0 = Date.parse('2024-09-02T06:00:00Z');
const csv = Buffer.from(
  [
    ...serializeCsv(
      generateWeek({ scenario: 'stable', weeks: 1, rowsPerWeek: 60, seed: 5, startDate: '2024-08-26' }, 0),
    ),
  ].join(''),
);

let plan: FaultPlan;
let proxies: FaultProxy[] = [];
let resumed: PipelineContext;
let killedRun: PipelineContext;
let realClient: OrchestrationClient;
let deadHolder: string;
const hub = `hub${uniqueName('resume').replace(/[^a-z0-9]/g, '')}`.slice(0, 40);

function settingsFor(connectionString: string): Settings {
  return loadSettings({ DataStorage: connectionString, TASKHUB_NAME: hub, BATCH_CLAIM_TTL_MINUTES: '10' });
}

/** The identity of a host process that ran and is gone (as a SIGKILLed `npm start` is). */
async function identityOfDeadProcess(): Promise<string> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('spawn', resolve));
  const identity = hostIdentity(child.pid);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return identity;
}

beforeAll(async () => {
  const connectionString = process.env.AZURITE_TEST_CONNECTION_STRING as string;
  plan = new FaultPlan();
  const started = await startStorageFaultProxies(connectionString, plan);
  proxies = started.proxies;
  const telemetry = new RecordingTelemetry(() => new Date(T0));
  const clock = new VirtualClock(new Date(T0));
  deadHolder = await identityOfDeadProcess();
  resumed = await composePipeline(settingsFor(connectionString), {
    now: clock.now,
    telemetry,
    log: () => {},
    claimHolder: hostIdentity(),
  });
  realClient = (await LocalHost.create(resumed, clock)).client;
  const proxied = started.connectionString;
  killedRun = await composePipeline(settingsFor(proxied), {
    now: clock.now,
    telemetry,
    log: () => {},
    claimHolder: deadHolder,
    storage: createStorageClients({ DataStorage: proxied }, undefined, { withoutRetries: true }),
  });
});

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
});

function forModel(ctx: PipelineContext, modelName: string): PipelineContext {
  return { ...ctx, settings: { ...ctx.settings, MODEL_NAME: modelName } };
}

/** What a batch leaves (records, decision, request, orchestration), names masked so runs compare. */
async function outcomeOf(ctx: PipelineContext, name: string) {
  const model = ctx.settings.MODEL_NAME;
  const mask = (value: unknown) =>
    JSON.stringify(value)
      .split(name)
      .join('<batch>')
      .split(model)
      .join('<model>')
      .replace(/[0-9a-f]{16}/g, '<id>');
  const evaluations = (await ctx.evaluations.list(model)).map((r) =>
    mask({ ...r, etag: '', cpuSeconds: 0, wallSeconds: 0 }),
  );
  const report = (await ctx.invoices.readReport(name).catch(() => null)) as Record<string, unknown> | null;
  const pending = await ctx.pending.get(model, 'current');
  const status = await realClient.status(retrainInstanceId(model));
  return {
    incoming: (await ctx.invoices.listIncoming()).includes(name),
    accepted: (await ctx.invoices.listAccepted()).some((b) => b.name === name),
    evaluations,
    report: report ? mask({ ...report, etag: '', cpuSeconds: 0, wallSeconds: 0 }) : null,
    pending: pending ? mask({ ...pending.request, state: pending.state }) : null,
    orchestration: status?.runtimeStatus ?? null,
    unfinishedClaims: (await ctx.ledger.unfinishedFor(name)).length,
  };
}

/** Uploads a batch and kills the worker evaluating it right after its claim's first journal step. */
async function killDuringEvaluation(ctx: PipelineContext, worker: PipelineContext, name: string) {
  const etag = await ctx.invoices.upload(name, Readable.from([csv]));
  // Effects: 0 the claim, 1 the report, 2 the scored journal step: the kill lands mid-evaluation.
  plan.arm({ kind: 'kill', afterEffect: 2 });
  const killed = await processIncomingBatch(worker, faultyOrchestrationClient(realClient, plan), name).catch(
    (e: unknown) => e,
  );
  const fired = plan.fired;
  plan.disarm();
  expect(fired).toBe(true);
  expect(killed).toBeInstanceOf(Error);
  const row = await ctx.storage
    .table('processedbatches')
    .getEntity<{ status: string; leaseUntil: string; body: string }>(
      'batch',
      ProcessedBatchLedger.keyOf(name, etag),
    );
  expect(row.status).toBe('processing');
  expect(Date.parse(row.leaseUntil)).toBeGreaterThan(T0);
  expect(JSON.parse(row.body)).toMatchObject({
    journal: { evaluatedAt: new Date(T0).toISOString(), scored: { kind: 'pipelines' } },
  });
}

describe('--resume after a kill during a batch evaluation', () => {
  it('releases the dead run’s claim and re-drives the batch at once to the uninterrupted outcome', async () => {
    const refModel = uniqueName('ref').slice(0, 20);
    const ref = forModel(resumed, refModel);
    const refName = `${refModel}.csv`;
    await ref.invoices.upload(refName, Readable.from([csv]));
    const refOutcome = await processIncomingBatch(ref, realClient, refName);
    expect(refOutcome.kind).toBe('evaluated');
    const reference = await outcomeOf(ref, refName);
    expect(reference.orchestration).not.toBeNull();

    const model = uniqueName('kil').slice(0, 20);
    const ctx = forModel(resumed, model);
    const name = `${model}.csv`;
    await killDuringEvaluation(ctx, forModel(killedRun, model), name);

    // What `npm start --resume` does before it delivers anything, at the killed run's clock.
    const released = await ctx.ledger.releaseDeadHolders(isDeadHost, new Date(T0).toISOString());
    expect(released.map((d) => d.name)).toEqual([name]);
    const outcome = await processIncomingBatch(ctx, realClient, name);
    expect(outcome.kind).toBe('evaluated');
    const after = await outcomeOf(ctx, name);
    // Same records, decision and request, stamped with the same (killed run's) time: nothing waited.
    expect(after).toEqual(reference);
    expect(after.unfinishedClaims).toBe(0);
  });

  it('without the release the batch waits for the lease: the outcome differs from the reference (the old gap)', async () => {
    const model = uniqueName('old').slice(0, 20);
    const ctx = forModel(resumed, model);
    const name = `${model}.csv`;
    await killDuringEvaluation(ctx, forModel(killedRun, model), name);
    const outcome = await processIncomingBatch(ctx, realClient, name);
    expect(outcome.kind).toBe('in-progress');
    const state = await outcomeOf(ctx, name);
    expect(state.evaluations).toEqual([]);
    expect(state.orchestration).toBeNull();
  });

  it('never releases a claim whose holder is alive', async () => {
    const model = uniqueName('liv').slice(0, 20);
    const ctx = forModel(resumed, model);
    const name = `${model}.csv`;
    // The "killed" worker here is this very process (alive): only its storage calls were cut.
    const liveWorker = forModel(
      {
        ...killedRun,
        ledger: new ProcessedBatchLedger(
          killedRun.storage.table('processedbatches'),
          10 * 60_000,
          hostIdentity(),
        ),
      },
      model,
    );
    await killDuringEvaluation(ctx, liveWorker, name);
    expect(await ctx.ledger.releaseDeadHolders(isDeadHost, new Date(T0).toISOString())).not.toContainEqual(
      expect.objectContaining({ name }),
    );
    expect((await processIncomingBatch(ctx, realClient, name)).kind).toBe('in-progress');
  });
});
