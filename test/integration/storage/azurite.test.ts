import { testStorage, uniqueName } from '../../support/storage';

describe('Azurite started by the test run', () => {
  it('serves blobs with ETag conditions and tables', async () => {
    const storage = testStorage();
    const container = storage.blobs.getContainerClient(uniqueName('smoke'));
    await container.create();
    const blob = container.getBlockBlobClient('a.txt');
    const first = await blob.upload('one', 3);
    await expect(blob.upload('two', 3, { conditions: { ifMatch: '"stale"' } })).rejects.toMatchObject({
      statusCode: 412,
    });
    await blob.upload('two', 3, { conditions: { ifMatch: first.etag } });
    const tableName = uniqueName('t');
    await storage.tables.createTable(tableName);
    const table = storage.table(tableName);
    await table.upsertEntity({ partitionKey: 'p', rowKey: 'r', value: 1 });
    expect((await table.getEntity<{ value: number }>('p', 'r')).value).toBe(1);
  });
});
