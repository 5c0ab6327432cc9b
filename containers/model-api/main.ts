import type { BlobServiceClient } from '@azure/storage-blob';
import type { FastifyInstance } from 'fastify';
import { loadSettings } from '../../shared/config';
import { ConfigError, describeError, isGreenMlError } from '../../shared/errors';
import { ModelRegistry } from '../../shared/registry';
import { createStorageClients } from '../../shared/storage/clients';
import { parseApiSettings, type ApiAuth } from './apiSettings';
import { loadServingModel } from './loadModel';
import { buildServer, type ServingModel } from './server';

/** Time in-flight requests get after SIGTERM before the process exits anyway (ACI waits ~30 s). */
const SHUTDOWN_GRACE_MS = 10_000;

export interface RunningModelApi {
  app: FastifyInstance;
  /** Settles when the model is loaded (or its load failed). */
  loaded: Promise<ServingModel>;
  address: string;
  /** The auth mode (never the key). */
  auth: ApiAuth['kind'];
}

/**
 * Starts listening at once and loads the model behind it, so /health answers 503 during the
 * download instead of refusing connections (which a probe cannot tell from a crashed container).
 */
export async function startModelApi(env: Record<string, string | undefined>): Promise<RunningModelApi> {
  const settings = loadSettings(env);
  const api = parseApiSettings(env);
  let blobs: BlobServiceClient;
  try {
    blobs = createStorageClients(settings).blobs;
  } catch (error) {
    // Only the parser's complaint is kept: the connection string itself is a secret.
    const reason = `not a usable storage connection string or endpoint (${describeError(error)})`;
    throw new ConfigError(`Invalid settings (1): DataStorage: ${reason}`, [{ key: 'DataStorage', reason }]);
  }
  const registry = new ModelRegistry(blobs);
  const loaded = loadServingModel(registry, settings.MODEL_NAME, api.choice);
  const app = buildServer(loaded, {
    logLevel: settings.LOG_LEVEL,
    auth: api.auth,
    transport: api.transport,
    serveTrees: api.serveTrees,
  });
  const address = await app.listen({ port: api.port, host: api.host });
  return { app, loaded, address, auth: api.auth.kind };
}

async function main(): Promise<void> {
  let running: RunningModelApi;
  try {
    running = await startModelApi(process.env);
  } catch (error) {
    fail(error, 'could not start');
    return;
  }
  const { app, loaded, address } = running;

  let closing = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    // Unref'd so a clean close exits at once instead of waiting for the timer.
    setTimeout(() => {
      process.stderr.write(`model-api: shutdown took over ${SHUTDOWN_GRACE_MS} ms, exiting\n`);
      process.exit(2);
    }, SHUTDOWN_GRACE_MS).unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => fail(error, 'shutdown failed'),
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);

  try {
    const serving = await loaded;
    const m = serving.metadata;
    app.log.info(
      {
        modelName: m.modelName,
        versionId: m.versionId,
        address,
        accuracy: m.holdoutMetrics.accuracy,
        auth: running.auth,
      },
      'model loaded, serving',
    );
  } catch (error) {
    // Ends the container: a model API that cannot load its model must fail visibly, not sit at 503.
    await app.close().catch(() => undefined);
    fail(error, 'could not load the model');
  }
}

function fail(error: unknown, what: string): void {
  const detail = isGreenMlError(error) ? `${error.code}: ${error.message}` : describeError(error);
  process.stderr.write(`model-api: ${what}: ${detail}\n`);
  process.exit(error instanceof ConfigError ? 1 : 2);
}

if (require.main === module) void main();
