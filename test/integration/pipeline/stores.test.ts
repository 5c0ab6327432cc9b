import { Readable } from 'node:stream';
import { TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import { ConflictError } from '../../../shared/errors';
import { PendingRetrainStore, mergeRequests } from '../../../shared/pipeline/pendingRetrains';
import { InvoiceStore } from '../../../shared/pipeline/invoiceStore';
import { ProcessedBatchLedger } from '../../../shared/pipeline/batchLedger';
import { ServingStateStore } from '../../../shared/pipeline/servingState';
import type { RetrainRequest } from '../../../shared/pipeline/contracts';
import { testStorage, uniqueName } from '../../support/storage';

function request(over: Partial<RetrainRequest> = {}): RetrainRequest {
  return {
    requestId: 'r1',
    modelName: 'vat-rate',
    kind: 'retrainWhenGreen',
    reason: 'drop 3 %',
    requestedAt: '2024-09-02T08:00:00.000Z',
    deadline: '2024-09-03T08:00:00.000Z',
    triggeringBatch: 'b1.csv',
    relativeDrop: 0.03,
    ...over,
  };
}

async function pendingStore() {
  const s = testStorage();
  const store = new PendingRetrainStore(s.table(uniqueName('pending')));
  await store.ensureTable();
  return store;
}

describe('mergeRequests (deadline-safe)', () => {
  it('keeps the earlier deadline and escalates to now', () => {
    const merged = mergeRequests(
      request(),
      request({ requestId: 'r2', deadline: '2024-09-04T08:00:00.000Z' }),
    );
    expect(merged.deadline).toBe('2024-09-03T08:00:00.000Z');
    expect(merged.requestId).toBe('r1');
    expect(
      mergeRequests(request(), request({ kind: 'retrainNow', deadline: '2024-09-02T09:00:00.000Z' })),
    ).toMatchObject({
      kind: 'retrainNow',
      deadline: '2024-09-02T09:00:00.000Z',
    });
  });
});

describe('PendingRetrainStore', () => {
  it('creates, merges while waiting, queues while training, and completes into the next request', async () => {
    const store = await pendingStore();
    expect((await store.submit(request(), 'now')).kind).toBe('created');
    const merged = await store.submit(
      request({ requestId: 'r2', kind: 'retrainNow', deadline: '2024-09-02T09:00:00.000Z' }),
      'now',
    );
    expect(merged).toMatchObject({ kind: 'merged', escalated: true, deadlineMoved: true });
    await store.markTraining('vat-rate', 'r1', 'now');
    expect(await store.listWaiting()).toHaveLength(0);
    expect((await store.submit(request({ requestId: 'r3' }), 'now')).kind).toBe('queued-next');
    const next = await store.complete('vat-rate', 'r1', 'now');
    expect(next?.requestId).toBe('r3');
    // a retried completion of r1 returns the same next request instead of dropping it
    expect((await store.complete('vat-rate', 'r1', 'now'))?.requestId).toBe('r3');
    expect(await store.complete('vat-rate', 'r3', 'now')).toBeNull();
    expect(await store.get('vat-rate')).toBeNull();
  });

  it('never loses a concurrent submission', async () => {
    const store = await pendingStore();
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.submit(
          request({
            requestId: `c${i}`,
            deadline: `2024-09-0${2 + (i % 5)}T08:00:00.000Z`,
            reason: `drop ${i}`,
          }),
          'now',
        ),
      ),
    );
    const current = await store.get('vat-rate');
    expect(current?.request.deadline).toBe('2024-09-02T08:00:00.000Z');
    for (let i = 0; i < 8; i++) expect(current?.request.reason).toContain(`drop ${i}`);
  });
});

type PipelinePolicy = NonNullable<TableServiceClientOptions['additionalPolicies']>[number]['policy'];

describe('PendingRetrainStore under contention', () => {
  it('fails loudly and retryably when every compare-and-swap loses, instead of dropping the plan', async () => {
    const table = uniqueName('pending');
    const connectionString = process.env.AZURITE_TEST_CONNECTION_STRING ?? '';
    const rival = TableClient.fromConnectionString(connectionString, table, {
      allowInsecureConnection: true,
    });
    // Another writer always wins: just before each conditional write, it rewrites the same row.
    const alwaysLoses: PipelinePolicy = {
      name: 'rivalWritesFirst',
      async sendRequest(req, next) {
        const ifMatch = req.headers.get('if-match');
        if (req.method === 'PUT' && ifMatch && ifMatch !== '*') {
          const row = await rival.getEntity<{ body: string }>('vat-rate', 'current');
          await rival.updateEntity(
            { partitionKey: 'vat-rate', rowKey: 'current', body: row.body },
            'Replace',
          );
        }
        return next(req);
      },
    };
    const contended = TableClient.fromConnectionString(connectionString, table, {
      allowInsecureConnection: true,
      additionalPolicies: [{ policy: alwaysLoses, position: 'perCall' }],
    });
    const plain = new PendingRetrainStore(rival);
    await plain.ensureTable();
    await plain.submit(request(), 'now');
    const store = new PendingRetrainStore(contended);
    const plan = {
      kind: 'window' as const,
      region: 'swedencentral',
      startAt: '2024-09-02T14:00:00.000Z',
      expectedGramsPerKwh: 20,
      reason: 'green',
      forecastQuality: null,
      baselineGramsPerKwh: null,
    };
    const failure = await store.recordPlan('vat-rate', 'r1', plan, 'now').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConflictError);
    expect((failure as ConflictError).retryable).toBe(true);
    expect((await plain.get('vat-rate'))?.latestPlan).toBeNull();
    // Without the rival the same call lands, and an escalation reaches the table (its owner).
    await plain.recordPlan('vat-rate', 'r1', plan, 'later', 'deadline reached');
    await plain.recordPlan('vat-rate', 'r1', plan, 'later', 'deadline reached');
    const row = await plain.get('vat-rate');
    expect(row?.latestPlan).toEqual(plan);
    expect(row?.request).toMatchObject({ kind: 'retrainNow', reason: 'drop 3 %; deadline reached' });
  });
});

describe('InvoiceStore and ProcessedBatchLedger', () => {
  it('moves accepted and quarantined batches without losing them, and claims each delivery once', async () => {
    const s = testStorage();
    const store = new InvoiceStore(s.blobs, uniqueName('inv'));
    await store.ensureContainer();
    const etag = await store.upload('week-1.csv', Buffer.from('a,b\n1,2\n'));
    const ledger = new ProcessedBatchLedger(s.table(uniqueName('ledger')), 10 * 60_000);
    await ledger.ensureTable();
    const first = await ledger.claim('week-1.csv', etag, '2024-01-01T00:00:00Z');
    expect(first.kind).toBe('claimed');
    expect(await ledger.claim('week-1.csv', etag, '2024-01-01T00:01:00Z')).toMatchObject({ kind: 'busy' });
    // The lease ran out: another worker takes over the journal; the first one's next write fails.
    const second = await ledger.claim('week-1.csv', etag, '2024-01-01T00:30:00Z');
    expect(second).toMatchObject({ kind: 'claimed', claim: { attempts: 2 } });
    if (first.kind !== 'claimed' || second.kind !== 'claimed') throw new Error('unreachable');
    expect(second.claim.journal.evaluatedAt).toBe('2024-01-01T00:00:00Z');
    await expect(ledger.save(first.claim, '2024-01-01T00:30:01Z')).rejects.toMatchObject({
      code: 'CONFLICT',
      retryable: true,
    });
    expect(await store.accept('week-1.csv', etag)).toBe('moved');
    expect(await store.accept('week-1.csv', etag)).toBe('moved'); // a repeated move is a no-op
    await ledger.finish(second.claim, 'accepted', '2024-01-01T00:31:00Z');
    expect(await ledger.claim('week-1.csv', etag, '2024-01-01T00:32:00Z')).toMatchObject({
      kind: 'done',
      outcome: 'accepted',
    });
    expect(await store.listIncoming()).toEqual([]);
    expect((await store.listAccepted()).map((b) => b.name)).toEqual(['week-1.csv']);

    const badEtag = await store.upload('junk.csv', Readable.from([Buffer.from([0, 1, 2, 3])]));
    await store.quarantine('junk.csv', badEtag, { code: 'BATCH_UNREADABLE', message: 'binary content' });
    expect(await store.listQuarantined()).toEqual(['junk.csv']);
    expect(await store.quarantineReason('junk.csv')).toMatchObject({
      code: 'BATCH_UNREADABLE',
      message: 'binary content',
    });
    expect(await store.listIncoming()).toEqual([]);
  });

  it('rejects uploads under batch names that could escape their prefix', async () => {
    const store = new InvoiceStore(testStorage().blobs, uniqueName('inv'));
    await expect(store.upload('../models/x.json', Buffer.from('x'))).rejects.toThrow(/Invalid batch name/);
  });
});

describe('ServingStateStore', () => {
  it('switches serving and reports the replaced group once', async () => {
    const store = new ServingStateStore(testStorage().table(uniqueName('serving')));
    await store.ensureTable();
    const rec = (g: string) => ({
      groupName: g,
      endpoint: null,
      versionId: g,
      region: 'westeurope',
      cpuCores: 1,
      memoryGb: 1.5,
      since: 'now',
      plan: null,
    });
    expect(await store.switchTo('vat-rate', rec('api-1'))).toEqual([]);
    expect(await store.switchTo('vat-rate', rec('api-2'))).toMatchObject([{ groupName: 'api-1' }]);
    // A crash after the switch and before the retirement: the repeated switch still names api-1.
    expect(await store.switchTo('vat-rate', rec('api-2'))).toMatchObject([{ groupName: 'api-1' }]);
    await store.markRetired('vat-rate', 'api-1');
    expect(await store.switchTo('vat-rate', rec('api-2'))).toEqual([]);
    expect((await store.get('vat-rate'))?.groupName).toBe('api-2');
  });
});
