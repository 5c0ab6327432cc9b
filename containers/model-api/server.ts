import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import { isGreenMlError, ValidationError } from '../../shared/errors';
import type { ModelMetadata } from '../../shared/model/metadata';
import { parsePredictRequest } from './predictRequest';
import { predictInvoices, type Prediction, type ServedModel } from './predictor';

/** A loaded model and what the registry says about it. */
export interface ServingModel {
  model: ServedModel;
  metadata: ModelMetadata;
}

export interface ModelApiOptions {
  /** JSON log lines to stdout at this level and above; no logging unless given (tests). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Largest request body; the 10,000-row batch limit needs about 3 MB of JSON. */
  bodyLimitBytes?: number;
  now?: () => Date;
}

export interface PredictResponse {
  modelVersion: string;
  predictions: Prediction[];
}

export interface ModelInfo {
  modelName: string;
  versionId: string;
  trainedAt: string;
  algorithm: string;
  featureSchemaVersion: string;
  hyperparameters: ModelMetadata['hyperparameters'];
  classes: string[];
  dataWindow: string[];
  rows: ModelMetadata['rows'];
  holdoutMetrics: ModelMetadata['holdoutMetrics'];
  warmStartedFrom: string | null;
  sizeBytes: number;
  loadedAt: string;
  /** Rows scored since start: the functional unit of the serving stage's SCI (per 1,000 predictions). */
  predictionsServed: number;
  requestsServed: number;
}

type ServingState =
  | { kind: 'loading' }
  | { kind: 'ready'; serving: ServingModel; loadedAt: string }
  | { kind: 'failed'; message: string };

const DEFAULT_BODY_LIMIT_BYTES = 8 * 1024 * 1024;

/**
 * The model API. Given a model it serves at once; given a promise of one it answers /health with
 * 503 until the promise settles, so the container listens (and a probe can see it is alive but not
 * ready) while the artifact is still downloading. A failed load stays 503 with the reason; the
 * entrypoint exits on it, so the orchestrator sees a failed container rather than a silent one.
 */
export function buildServer(
  source: ServingModel | Promise<ServingModel>,
  options: ModelApiOptions = {},
): FastifyInstance {
  const now = options.now ?? (() => new Date());
  let state: ServingState = { kind: 'loading' };
  let predictionsServed = 0;
  let requestsServed = 0;

  Promise.resolve(source).then(
    (serving) => {
      state = { kind: 'ready', serving, loadedAt: now().toISOString() };
    },
    (error: unknown) => {
      state = { kind: 'failed', message: error instanceof Error ? error.message : String(error) };
    },
  );

  const app = Fastify({
    logger: options.logLevel ? { level: options.logLevel } : false,
    bodyLimit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    // A request log line per prediction call would cost more CPU than the prediction; counts are in /model.
    logController: new LogController({ disableRequestLogging: true }),
  });

  const notReady = (): { statusCode: 503; body: { status: string; error?: string } } =>
    state.kind === 'failed'
      ? { statusCode: 503, body: { status: 'failed', error: state.message } }
      : { statusCode: 503, body: { status: 'loading' } };

  app.get('/health', async (_request, reply) => {
    if (state.kind !== 'ready') {
      const { statusCode, body } = notReady();
      return reply.code(statusCode).send(body);
    }
    return { status: 'ok', versionId: state.serving.metadata.versionId };
  });

  app.get('/model', async (_request, reply) => {
    if (state.kind !== 'ready') {
      const { statusCode, body } = notReady();
      return reply.code(statusCode).send(body);
    }
    const m = state.serving.metadata;
    const info: ModelInfo = {
      modelName: m.modelName,
      versionId: m.versionId,
      trainedAt: m.trainedAt,
      algorithm: m.algorithm,
      featureSchemaVersion: m.featureSchemaVersion,
      hyperparameters: m.hyperparameters,
      classes: m.classes,
      dataWindow: m.dataWindow,
      rows: m.rows,
      holdoutMetrics: m.holdoutMetrics,
      warmStartedFrom: m.warmStartedFrom,
      sizeBytes: m.sizeBytes,
      loadedAt: state.loadedAt,
      predictionsServed,
      requestsServed,
    };
    return info;
  });

  app.post('/predict', async (request, reply) => {
    if (state.kind !== 'ready') {
      const { statusCode, body } = notReady();
      return reply.code(statusCode).send(body);
    }
    const parsed = parsePredictRequest(request.body);
    const predictions = predictInvoices(state.serving.model, parsed.rows);
    predictionsServed += predictions.length;
    requestsServed += 1;
    const response: PredictResponse = { modelVersion: state.serving.metadata.versionId, predictions };
    return response;
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      error: { code: 'NOT_FOUND', message: `No route ${request.method} ${request.url}` },
    });
  });

  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    if (error instanceof ValidationError) {
      return reply.code(400).send({
        error: { code: error.code, message: error.message, issues: error.issues, ...error.details },
      });
    }
    // Fastify's own client errors (malformed JSON, body too large, wrong content type) keep their status.
    const statusCode = 'statusCode' in error ? error.statusCode : undefined;
    if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
      const code = 'code' in error && typeof error.code === 'string' ? error.code : 'BAD_REQUEST';
      return reply.code(statusCode).send({ error: { code, message: error.message } });
    }
    request.log.error({ err: isGreenMlError(error) ? error.toJSON() : error }, 'predict request failed');
    return reply.code(500).send({ error: { code: 'INTERNAL', message: 'Internal error while serving' } });
  });

  return app;
}
