import { ConflictError, NotFoundError, ValidationError } from '../../../shared/errors';
import { ModelRegistry, type HistoryEntry } from '../../../shared/registry';
import { testStorage } from '../../support/storage';
import { clientRacingChampionWrites } from './racingClient';
import { freshRegistry, metadataFor } from './fixtures';

const MODEL = 'vat-rate';

function connectionString(): string {
  const value = process.env.AZURITE_TEST_CONNECTION_STRING;
  if (!value) throw new Error('Azurite was not started: run tests through jest (globalSetup)');
  return value;
}

async function withVersions(...ids: string[]): Promise<ModelRegistry> {
  const registry = await freshRegistry();
  for (const [i, id] of ids.entries())
    await registry.putVersion(metadataFor(MODEL, id, { hour: i }), `{"id":"${id}"}`);
  return registry;
}

/** Every history blob as written, keyed by name, with its ETag: proves nothing is rewritten. */
async function historyBlobs(registry: ModelRegistry): Promise<Map<string, { etag: string; text: string }>> {
  const container = testStorage().blobs.getContainerClient(registry.containerName);
  const out = new Map<string, { etag: string; text: string }>();
  for await (const item of container.listBlobsFlat({ prefix: `${MODEL}/history/` })) {
    const blob = container.getBlockBlobClient(item.name);
    out.set(item.name, {
      etag: item.properties.etag ?? '',
      text: (await blob.downloadToBuffer()).toString(),
    });
  }
  return out;
}

function summary(entries: HistoryEntry[]): string[] {
  return entries.map(
    (e) => `${e.sequence} ${e.action} ${e.fromVersionId ?? '-'}->${e.versionId} (${e.reason})`,
  );
}

describe('ModelRegistry champion', () => {
  it('promotes and rolls back along the history, and never rewrites an entry', async () => {
    const registry = await withVersions('a', 'b', 'c');
    expect(await registry.getChampion(MODEL)).toBeNull();
    expect(await registry.history(MODEL)).toEqual([]);
    await expect(
      registry.rollback(MODEL, { reason: 'none yet', expectedChampion: 'a' }),
    ).rejects.toBeInstanceOf(NotFoundError);

    const first = await registry.promote(MODEL, 'a', { reason: 'first model', expectedChampion: null });
    expect(first).toMatchObject({ action: 'promote', versionId: 'a', previousVersionId: null, sequence: 1 });
    await registry.promote(MODEL, 'b', { reason: 'better', expectedChampion: 'a' });
    const afterTwo = await historyBlobs(registry);
    await registry.promote(MODEL, 'c', { reason: 'better still', expectedChampion: 'b' });

    // A caller that saw an old champion loses, and is told who is champion now.
    await expect(
      registry.promote(MODEL, 'a', { reason: 'stale', expectedChampion: 'b' }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { actualChampion: 'c', expectedChampion: 'b' },
    });
    await expect(
      registry.promote(MODEL, 'c', { reason: 'again', expectedChampion: 'c' }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(
      registry.promote(MODEL, 'zz', { reason: 'unknown', expectedChampion: 'c' }),
    ).rejects.toBeInstanceOf(NotFoundError);

    const back = await registry.rollback(MODEL, { reason: 'c misbehaves', expectedChampion: 'c' });
    expect(back).toMatchObject({ action: 'rollback', versionId: 'b', previousVersionId: 'c', sequence: 4 });
    // A second rollback keeps going back (a stack), it does not bounce back to c.
    await registry.rollback(MODEL, { reason: 'b too', expectedChampion: 'b' });
    expect((await registry.getChampion(MODEL))?.pointer.versionId).toBe('a');
    await expect(
      registry.rollback(MODEL, { reason: 'nothing left', expectedChampion: 'a' }),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(registry.rollback(MODEL, { reason: 'stale', expectedChampion: 'c' })).rejects.toBeInstanceOf(
      ConflictError,
    );
    await registry.promote(MODEL, 'c', { reason: 'fixed', expectedChampion: 'a' });

    expect(summary(await registry.history(MODEL))).toEqual([
      '1 promote -->a (first model)',
      '2 promote a->b (better)',
      '3 promote b->c (better still)',
      '4 rollback c->b (c misbehaves)',
      '5 rollback b->a (b too)',
      '6 promote a->c (fixed)',
    ]);
    const final = await historyBlobs(registry);
    expect(final.size).toBe(6);
    for (const [name, written] of afterTwo) expect(final.get(name)).toEqual(written);
  });

  it('treats a retried change whose first attempt won as done', async () => {
    const registry = await withVersions('a', 'b');
    await registry.promote(MODEL, 'a', { reason: 'first', expectedChampion: null });
    const won = await registry.promote(MODEL, 'b', { reason: 'better', expectedChampion: 'a' });
    expect(await registry.promote(MODEL, 'b', { reason: 'better', expectedChampion: 'a' })).toEqual(won);
    const rolled = await registry.rollback(MODEL, { reason: 'worse', expectedChampion: 'b' });
    expect(await registry.rollback(MODEL, { reason: 'worse', expectedChampion: 'b' })).toEqual(rolled);
    expect((await registry.history(MODEL)).map((e) => e.sequence)).toEqual([1, 2, 3]);
  });

  it('keeps history true when a change stopped between the pointer and its history entry', async () => {
    const registry = await withVersions('a', 'b', 'c');
    await registry.promote(MODEL, 'a', { reason: 'first', expectedChampion: null });
    await registry.promote(MODEL, 'b', { reason: 'second', expectedChampion: 'a' });
    // Simulate the crash: the pointer says sequence 2 but entry 2 was never written.
    const container = testStorage().blobs.getContainerClient(registry.containerName);
    await container.getBlockBlobClient(`${MODEL}/history/0000000002.json`).delete();

    expect(summary(await registry.history(MODEL))).toEqual([
      '1 promote -->a (first)',
      '2 promote a->b (second)',
    ]);
    await registry.promote(MODEL, 'c', { reason: 'third', expectedChampion: 'b' });
    expect([...(await historyBlobs(registry)).keys()]).toEqual([
      `${MODEL}/history/0000000001.json`,
      `${MODEL}/history/0000000002.json`,
      `${MODEL}/history/0000000003.json`,
    ]);
    expect(summary(await registry.history(MODEL))).toEqual([
      '1 promote -->a (first)',
      '2 promote a->b (second)',
      '3 promote b->c (third)',
    ]);
  });

  it('lets exactly one of two concurrent promotions win, repeatedly', async () => {
    const registry = await withVersions('base');
    for (let round = 0; round < 8; round++) {
      const model = `race-${round}`;
      for (const id of ['base', 'x', 'y'])
        await registry.putVersion(metadataFor(model, id), `{"id":"${id}"}`);
      // Even rounds race from "no champion" (create-if-absent), odd rounds from a champion (ETag match).
      const expected = round % 2 === 0 ? null : 'base';
      if (expected) await registry.promote(model, 'base', { reason: 'seed', expectedChampion: null });

      // Both writes of the pointer are released together, so the blob condition decides.
      const racing = new ModelRegistry(clientRacingChampionWrites(connectionString(), 2), {
        containerName: registry.containerName,
      });
      const results = await Promise.allSettled([
        racing.promote(model, 'x', { reason: 'x wins', expectedChampion: expected }),
        racing.promote(model, 'y', { reason: 'y wins', expectedChampion: expected }),
      ]);
      const winners = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const losers = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(1);
      const winner = winners[0];
      expect(losers[0]).toBeInstanceOf(ConflictError);
      expect(losers[0]).toMatchObject({
        code: 'CONFLICT',
        details: { winner: winner.versionId, winnerSequence: winner.sequence },
      });
      expect((losers[0] as ConflictError).message).toContain(winner.versionId);

      expect((await registry.getChampion(model))?.pointer).toEqual(winner);
      const history = await registry.history(model);
      expect(history.at(-1)).toMatchObject({ versionId: winner.versionId, sequence: winner.sequence });
      expect(history).toHaveLength(expected ? 2 : 1);
    }
  });

  it('also lets only one win when the calls merely overlap (no held writes)', async () => {
    const registry = await withVersions('base', 'x', 'y');
    for (let round = 0; round < 4; round++) {
      const model = `overlap-${round}`;
      for (const id of ['base', 'x', 'y'])
        await registry.putVersion(metadataFor(model, id), `{"id":"${id}"}`);
      await registry.promote(model, 'base', { reason: 'seed', expectedChampion: null });
      const results = await Promise.allSettled([
        registry.promote(model, 'x', { reason: 'x', expectedChampion: 'base' }),
        registry.promote(model, 'y', { reason: 'y', expectedChampion: 'base' }),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const rejected = results.find((r) => r.status === 'rejected');
      expect(rejected?.status === 'rejected' && rejected.reason).toBeInstanceOf(ConflictError);
      expect(await registry.history(model)).toHaveLength(2);
    }
  });

  it('validates names and options', async () => {
    const registry = await withVersions('a');
    await expect(registry.promote(MODEL, 'a', { reason: '  ', expectedChampion: null })).rejects.toThrow(
      /reason/,
    );
    await expect(
      registry.promote(MODEL, '../a', { reason: 'x', expectedChampion: null }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(registry.history('../vat-rate')).rejects.toBeInstanceOf(ValidationError);
    expect(await registry.getChampion(MODEL)).toBeNull();
  });
});
