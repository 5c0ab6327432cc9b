import {
  BlobServiceClient,
  newPipeline,
  StorageSharedKeyCredential,
  type RequestPolicyFactory,
} from '@azure/storage-blob';

/**
 * A real blob client whose writes of `champion.json` are held until `parties` of them are in flight,
 * then sent together. Each promotion has read the pointer before its write is held, so all of them
 * pass the early "expected champion" check and the race is decided by the blob's ETag condition.
 */
export function clientRacingChampionWrites(connectionString: string, parties: number): BlobServiceClient {
  const fields = new Map(
    connectionString
      .split(';')
      .filter((part) => part.includes('='))
      .map((part) => [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)] as const),
  );
  const accountName = fields.get('AccountName');
  const accountKey = fields.get('AccountKey');
  const endpoint = fields.get('BlobEndpoint');
  if (!accountName || !accountKey || !endpoint) throw new Error('Expected an Azurite connection string');

  let held: (() => void)[] = [];
  const barrier: RequestPolicyFactory = {
    create: (next) => ({
      sendRequest: async (request) => {
        if (request.method === 'PUT' && new URL(request.url).pathname.endsWith('/champion.json')) {
          await new Promise<void>((release) => {
            held.push(release);
            if (held.length < parties) return;
            const all = held;
            held = [];
            for (const go of all) go();
          });
        }
        return next.sendRequest(request);
      },
    }),
  };
  // The pipeline keeps the credential aside and turns extra factories into policies; building a new
  // Pipeline from its parts would drop the credential.
  const pipeline = newPipeline(new StorageSharedKeyCredential(accountName, accountKey));
  pipeline.factories.push(barrier);
  return new BlobServiceClient(endpoint, pipeline);
}
