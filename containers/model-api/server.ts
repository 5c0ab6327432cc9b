import http from 'node:http';
import https from 'node:https';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import underPressure from '@fastify/under-pressure';
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { isGreenMlError, ValidationError } from '../../shared/errors';
import type { ModelMetadata } from '../../shared/model/metadata';
import type { ApiAuth, ApiTransport } from './apiSettings';
import { createAuthenticator } from './auth';
import { LoadMetrics, type LoadReport } from './loadMetrics';
import { BatchText, NotOnlyInvoices } from './batchText';
import {
  MAX_BATCH_ROWS,
  noRows,
  quoted,
  readPredictEnvelope,
  RowChecker,
  rowSpecFor,
  tooManyRows,
  type RowSpec,
} from './predictRequest';
import {
  PredictionWriter,
  predictPathChunk,
  servingPath,
  withTreePrefix,
  type AnyServedModel,
  type Prediction,
  type ServingPath,
} from './predictor';

/** A loaded model (either artifact format) and what the registry says about it. */
export interface ServingModel {
  model: AnyServedModel;
  metadata: ModelMetadata;
}

/**
 * The largest legal row as JSON: three 64-character identifiers, a 32-character amount and every
 * other field at its longest, with the key names (a test builds that row and checks it fits).
 */
export const MAX_ROW_JSON_BYTES = 512;

/** Every limit that keeps a hostile or overloaded caller from taking the API down. */
export interface ServerLimits {
  /** Largest body: the largest legal batch, plus the envelope. Larger is 413 before reading. */
  bodyLimitBytes: number;
  /** Bodies above this (or of unknown length) are "heavy": admitted only while a heavy slot is free. */
  heavyBodyBytes: number;
  /** Heavy requests receiving or being worked on at once; more answer 503 before their body is read. */
  maxHeavyInFlight: number;
  /** Requests past body reading and not yet answered; more answer 503. */
  maxInFlight: number;
  /** Open sockets; Node drops connections beyond this at accept. */
  maxConnections: number;
  /** Time to receive the request headers. */
  headersTimeoutMs: number;
  /** Time to receive the whole request, body included (slow bodies end here with 408). */
  requestTimeoutMs: number;
  /** An idle keep-alive socket is closed after this. */
  keepAliveTimeoutMs: number;
  /** Rows checked or predicted between two yields of the event loop. */
  chunkRows: number;
  /** Seconds a shed caller is told to wait. */
  retryAfterSeconds: number;
  /** Emergency brake (@fastify/under-pressure): shed when the process is past these. */
  maxRssBytes: number;
  maxEventLoopDelayMs: number;
  /** 4xx/5xx log lines per second before they are counted instead (an attack must not fill the disk). */
  maxErrorLogsPerSecond: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  bodyLimitBytes: MAX_BATCH_ROWS * MAX_ROW_JSON_BYTES + 1024,
  heavyBodyBytes: 64 * 1024,
  maxHeavyInFlight: 2,
  maxInFlight: 64,
  maxConnections: 2048,
  headersTimeoutMs: 5000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5000,
  chunkRows: 250,
  retryAfterSeconds: 1,
  maxRssBytes: 1024 * 1024 * 1024,
  maxEventLoopDelayMs: 2000,
  maxErrorLogsPerSecond: 50,
};

export interface ModelApiOptions {
  auth: ApiAuth;
  transport?: ApiTransport;
  /** Serve only the first k trees (null or absent: all). */
  serveTrees?: number | null;
  /** JSON log lines to stdout at this level and above; no logging unless given (tests). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  limits?: Partial<ServerLimits>;
  now?: () => Date;
  /** Epoch ms the process started, for the cold-start figure (default: this process's start). */
  processStartMs?: number;
}

export interface PredictResponse {
  modelVersion: string;
  predictions: Prediction[];
}

/** What /model tells an authenticated caller: the version and its quality, nothing about the data. */
export interface ModelInfo {
  modelName: string;
  versionId: string;
  trainedAt: string;
  algorithm: string;
  featureSchemaVersion: string;
  hyperparameters: ModelMetadata['hyperparameters'];
  classes: string[];
  /** The column predicted, and the columns a request row must carry for this model. */
  label: string;
  requiredColumns: string[];
  holdoutMetrics: ModelMetadata['holdoutMetrics'];
  warmStartedFrom: string | null;
  sizeBytes: number;
  /** Trees answering requests (MODEL_API_SERVE_TREES, or all). */
  servedTrees: number;
  loadedAt: string;
  /** Rows scored since start: the functional unit of the serving stage's SCI (per 1,000 predictions). */
  predictionsServed: number;
  requestsServed: number;
}

type ServingState =
  | { kind: 'loading' }
  | {
      kind: 'ready';
      serving: ServingModel;
      /** The served trees and how rows are read for them (fixed at load). */
      served: ServingPath;
      rows: RowSpec;
      loadedAt: string;
    }
  | { kind: 'failed'; message: string };

/** A shed or refused request, answered with its status and, for 503, when to come back. */
class Refusal extends Error {
  constructor(
    readonly statusCode: 401 | 413 | 415 | 503,
    readonly code: 'UNAUTHORIZED' | 'PAYLOAD_TOO_LARGE' | 'UNSUPPORTED_MEDIA_TYPE' | 'OVERLOADED',
    message: string,
  ) {
    super(message);
  }
}

/** The caller closed the connection: the rest of its work is dropped, nothing is sent. */
class ClientGone extends Error {}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}

/** The request stream itself is destroyed once its body is read, so the socket is what tells. */
function clientGone(request: FastifyRequest): boolean {
  const socket = request.raw.socket;
  return socket.destroyed || !socket.writable;
}

/** Limits log lines per second; the lines over the limit are counted and reported once. */
class LogBudget {
  private windowStart = 0;
  private used = 0;
  private suppressed = 0;

  constructor(private readonly perSecond: number) {}

  /** True when a line may be written; `flushed` is how many were suppressed in the last window. */
  take(nowMs: number): { allowed: boolean; flushed: number } {
    let flushed = 0;
    if (nowMs - this.windowStart >= 1000) {
      flushed = this.suppressed;
      this.windowStart = nowMs;
      this.used = 0;
      this.suppressed = 0;
    }
    if (this.used < this.perSecond) {
      this.used += 1;
      return { allowed: true, flushed };
    }
    this.suppressed += 1;
    return { allowed: false, flushed };
  }
}

function serverFactory(transport: ApiTransport, limits: ServerLimits) {
  return (handler: http.RequestListener): http.Server => {
    const options: http.ServerOptions = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks the two timeouts above only this often (default 30 s).
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    };
    const server =
      transport.kind === 'https'
        ? https.createServer(
            { ...options, cert: transport.cert, key: transport.key, minVersion: 'TLSv1.2' },
            handler,
          )
        : http.createServer(options, handler);
    server.maxConnections = limits.maxConnections;
    // A socket with nothing moving for this long is dead weight (covers a stalled TLS handshake too).
    server.setTimeout(limits.requestTimeoutMs);
    return server;
  };
}

/**
 * The model API. Given a model it serves at once; given a promise of one it answers /health with
 * 503 until the promise settles, so the container listens (and a probe can see it is alive but not
 * ready) while the artifact is still downloading. A failed load stays 503; the entrypoint exits on
 * it, so the orchestrator sees a failed container rather than a silent one.
 *
 * Under load it sheds instead of queueing: auth, content type, declared size and a free slot are
 * all decided from the headers, before a byte of body is read; big requests are checked and
 * predicted in chunks that yield the event loop (so /health and small requests keep answering)
 * and stop as soon as their caller has gone.
 */
export function buildServer(
  source: ServingModel | Promise<ServingModel>,
  options: ModelApiOptions,
): FastifyInstance {
  const now = options.now ?? (() => new Date());
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const transport = options.transport ?? { kind: 'http' };
  const authenticator = createAuthenticator(options.auth);
  const metrics = new LoadMetrics(() => now().getTime());
  const processStartMs = options.processStartMs ?? performance.timeOrigin;
  const logBudget = new LogBudget(limits.maxErrorLogsPerSecond);
  let state: ServingState = { kind: 'loading' };
  let predictionsServed = 0;
  let requestsServed = 0;
  let heavyInFlight = 0;
  let inFlight = 0;

  Promise.resolve(source).then(
    (serving) => {
      const served = servingPath(withTreePrefix(serving.model, options.serveTrees ?? null));
      state = {
        kind: 'ready',
        serving,
        served,
        rows: rowSpecFor(served),
        loadedAt: now().toISOString(),
      };
      metrics.markReady(Date.now() - processStartMs);
    },
    (error: unknown) => {
      state = { kind: 'failed', message: error instanceof Error ? error.message : String(error) };
    },
  );

  const app = Fastify({
    logger: options.logLevel ? { level: options.logLevel } : false,
    bodyLimit: limits.bodyLimitBytes,
    serverFactory: serverFactory(transport, limits),
    // A request log line per prediction call would cost more CPU than the prediction; 4xx/5xx are logged below.
    logController: new LogController({ disableRequestLogging: true }),
  });

  // Only JSON is read; Fastify's text/plain parser would turn a wrong content type into a 400.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    // A large body is parsed by the handler a slice at a time (see BatchText).
    if (text.length > limits.heavyBodyBytes) return done(null, new LargeBody(text));
    try {
      done(null, parseWhole(text));
    } catch (error) {
      done(error as Error);
    }
  });

  const refuse = (request: FastifyRequest, reply: FastifyReply, refusal: Refusal): FastifyReply => {
    if (refusal.statusCode === 401) {
      void reply.header('www-authenticate', `Bearer realm="model-api", error="invalid_token"`);
    }
    if (refusal.statusCode === 503) void reply.header('retry-after', String(limits.retryAfterSeconds));
    // The body was not read: closing is cheaper than draining up to 5 MB to keep the socket.
    if (hasBody(request)) void reply.header('connection', 'close');
    return reply.code(refusal.statusCode).send({
      error: { code: refusal.code, message: refusal.message },
    });
  };

  const recorded = new WeakSet<FastifyRequest>();
  /** One load record per /predict call, whether answered, refused or abandoned. */
  const recordOnce = (request: FastifyRequest, statusCode: number, ms: number, rows: number): void => {
    if (request.routeOptions.url !== '/predict' || recorded.has(request)) return;
    recorded.add(request);
    metrics.record(statusCode, ms, rows);
  };

  const predictedRows = new WeakMap<FastifyReply, number>();
  const rowsOf = (reply: FastifyReply): number => predictedRows.get(reply) ?? 0;

  const slots = new WeakMap<FastifyRequest, { heavy: boolean; work: boolean }>();
  const release = (request: FastifyRequest): void => {
    const held = slots.get(request);
    if (!held) return;
    slots.delete(request);
    if (held.heavy) heavyInFlight -= 1;
    if (held.work) inFlight -= 1;
  };

  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/health') return;
    const outcome = await authenticator.check(request.headers.authorization);
    if (!outcome.ok)
      return refuse(request, reply, new Refusal(401, 'UNAUTHORIZED', `Unauthorized: ${outcome.reason}`));
    if (request.routeOptions.url !== '/predict' || request.method !== 'POST') return;

    const contentType = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (contentType !== 'application/json') {
      const message = `Content-Type must be application/json (got ${quoted(contentType || 'none')})`;
      return refuse(request, reply, new Refusal(415, 'UNSUPPORTED_MEDIA_TYPE', message));
    }
    const declared = request.headers['content-length'];
    const length = declared === undefined ? null : Number(declared);
    if (length !== null && length > limits.bodyLimitBytes) {
      const message = `Body of ${length} bytes is over the ${limits.bodyLimitBytes}-byte limit (${MAX_BATCH_ROWS} invoices at most)`;
      return refuse(request, reply, new Refusal(413, 'PAYLOAD_TOO_LARGE', message));
    }
    if (length === null || length > limits.heavyBodyBytes) {
      if (heavyInFlight >= limits.maxHeavyInFlight) {
        const message = 'Too many large requests in progress; retry later';
        return refuse(request, reply, new Refusal(503, 'OVERLOADED', message));
      }
      heavyInFlight += 1;
      slots.set(request, { heavy: true, work: false });
      reply.raw.once('close', () => release(request));
    }
    return undefined;
  });

  app.addHook('preHandler', async (request, reply) => {
    if (request.routeOptions.url !== '/predict') return;
    if (inFlight >= limits.maxInFlight) {
      return refuse(
        request,
        reply,
        new Refusal(503, 'OVERLOADED', 'Too many requests in progress; retry later'),
      );
    }
    inFlight += 1;
    const held = slots.get(request);
    if (held) held.work = true;
    else {
      slots.set(request, { heavy: false, work: true });
      reply.raw.once('close', () => release(request));
    }
    return undefined;
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? '(no route)';
    const statusCode = reply.statusCode;
    recordOnce(request, statusCode, reply.elapsedTime, statusCode === 200 ? rowsOf(reply) : 0);
    if (statusCode < 400) return;
    const budget = logBudget.take(Date.now());
    if (budget.flushed > 0)
      request.log.warn({ suppressed: budget.flushed }, 'error responses not logged (over budget)');
    if (!budget.allowed) return;
    // Route, status and sizes only: never the body, headers or the URL's query.
    const entry = {
      method: request.method,
      route,
      statusCode,
      requestBytes: Number(request.headers['content-length'] ?? 0),
      responseBytes: Number(reply.getHeader('content-length') ?? 0),
      ms: Math.round(reply.elapsedTime * 10) / 10,
    };
    if (statusCode >= 500) request.log.error(entry, 'request failed');
    else request.log.warn(entry, 'request rejected');
  });

  app.addHook('onRequestAbort', async (request) => recordOnce(request, 499, 0, 0));

  const notReady = (reply: FastifyReply): FastifyReply =>
    reply
      .code(503)
      .header('retry-after', String(limits.retryAfterSeconds))
      .send({ status: state.kind === 'failed' ? 'failed' : 'loading' });

  /** Anonymous: says only whether the API can serve, nothing about the model or the data. */
  app.get('/health', async (_request, reply) => {
    if (state.kind !== 'ready') return notReady(reply);
    return { status: 'ok' };
  });

  const registerServingRoutes = (scope: FastifyInstance): void => {
    scope.get('/model', async (_request, reply) => {
      if (state.kind !== 'ready') return notReady(reply);
      const m = state.serving.metadata;
      const info: ModelInfo = {
        modelName: m.modelName,
        versionId: m.versionId,
        trainedAt: m.trainedAt,
        algorithm: m.algorithm,
        featureSchemaVersion: m.featureSchemaVersion,
        hyperparameters: m.hyperparameters,
        classes: m.classes,
        holdoutMetrics: m.holdoutMetrics,
        warmStartedFrom: m.warmStartedFrom,
        sizeBytes: m.sizeBytes,
        label: state.served.label,
        requiredColumns: state.rows.required.map(([column]) => column),
        servedTrees: state.served.model.forest.trees.length,
        loadedAt: state.loadedAt,
        predictionsServed,
        requestsServed,
      };
      return info;
    });

    scope.get('/metrics/load', async (): Promise<LoadReport> => metrics.report());

    scope.post('/predict', async (request, reply) => {
      if (state.kind !== 'ready') return notReady(reply);
      const { served, serving, rows: spec } = state;
      const body = request.body;
      const reader = body instanceof LargeBody ? BatchText.open(body.text) : null;
      const checker = reader
        ? await checkSlices(reader, request, limits.chunkRows, spec)
        : await checkWhole(
            body instanceof LargeBody ? parseWhole(body.text) : body,
            request,
            limits.chunkRows,
            spec,
          );
      const { rows } = checker.finish();
      const writer = new PredictionWriter(served);
      for (let from = 0; from < rows.length; from += limits.chunkRows) {
        if (from > 0) await nextTurn(request);
        writer.append(predictPathChunk(served, rows.slice(from, from + limits.chunkRows)));
      }
      predictionsServed += writer.rows;
      requestsServed += 1;
      predictedRows.set(reply, writer.rows);
      return reply.type('application/json').send(writer.json(serving.metadata.versionId));
    });
  };

  // Everything but /health sits behind the emergency brake of @fastify/under-pressure: a probe must
  // keep seeing "alive" while requests are shed, or the orchestrator would replace a busy API.
  void app.register(async (scope) => {
    await scope.register(underPressure, {
      maxRssBytes: limits.maxRssBytes,
      maxEventLoopDelay: limits.maxEventLoopDelayMs,
      retryAfter: limits.retryAfterSeconds,
    });
    registerServingRoutes(scope);
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      error: { code: 'NOT_FOUND', message: `No route ${request.method} ${quoted(request.url)}` },
    });
  });

  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    if (error instanceof ClientGone) {
      // Nobody is listening; the socket is gone, so nothing is written.
      request.log.info({ route: request.routeOptions.url }, 'client went away; work dropped');
      recordOnce(request, 499, reply.elapsedTime, 0);
      return reply.code(499).send();
    }
    if (error instanceof ValidationError) {
      return reply.code(400).send({
        error: { code: error.code, message: error.message, issues: error.issues, ...error.details },
      });
    }
    if (error instanceof Refusal) return refuse(request, reply, error);
    const statusCode = 'statusCode' in error ? error.statusCode : undefined;
    if (statusCode === 503) {
      // @fastify/under-pressure's brake: the process is past its memory or event-loop limit.
      return refuse(request, reply, new Refusal(503, 'OVERLOADED', 'Model API under pressure; retry later'));
    }
    // Fastify's own client errors (body too large while reading, bad content length) keep their status.
    if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
      const code = 'code' in error && typeof error.code === 'string' ? error.code : 'BAD_REQUEST';
      if (hasBody(request)) void reply.header('connection', 'close');
      return reply.code(statusCode).send({ error: { code, message: error.message } });
    }
    request.log.error(
      { err: isGreenMlError(error) ? error.toJSON() : { message: error.message } },
      'request failed',
    );
    return reply.code(500).send({ error: { code: 'INTERNAL', message: 'Internal error while serving' } });
  });

  return app;
}

/** The text of a body too large to parse in one piece without stalling other requests. */
class LargeBody {
  constructor(readonly text: string) {}
}

function notJson(): ValidationError {
  // V8's message quotes the body, so none of it is passed on.
  return new ValidationError('Body is not valid JSON', [{ path: '(body)', message: 'not valid JSON' }]);
}

/**
 * JSON.parse keeps a `__proto__` key as a plain own property (no prototype change); the row
 * checks then reject it by name, which says more than "not valid JSON".
 */
function parseWhole(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw notJson();
  }
}

async function checkWhole(
  body: unknown,
  request: FastifyRequest,
  chunkRows: number,
  spec: RowSpec,
): Promise<RowChecker> {
  const envelope = readPredictEnvelope(body);
  const checker = new RowChecker(envelope.kind, spec);
  const total = envelope.rawRows.length;
  for (let from = 0; from < total; from += chunkRows) {
    if (!checker.add(envelope.rawRows.slice(from, from + chunkRows), from)) break;
    if (from + chunkRows < total) await nextTurn(request);
  }
  return checker;
}

/** Parses and checks a large batch a slice at a time; stops parsing once the answer is a 400. */
async function checkSlices(
  reader: BatchText,
  request: FastifyRequest,
  chunkRows: number,
  spec: RowSpec,
): Promise<RowChecker> {
  const checker = new RowChecker('batch', spec);
  for (;;) {
    let slice: unknown[] | null;
    try {
      slice = reader.next(chunkRows);
      if (reader.rowsRead > MAX_BATCH_ROWS) throw tooManyRows(reader.rowsRead + reader.countRest());
    } catch (error) {
      if (error instanceof NotOnlyInvoices)
        return checkWhole(parseWhole(reader.text), request, chunkRows, spec);
      if (error instanceof SyntaxError) throw notJson();
      throw error;
    }
    if (slice === null) break;
    if (!checker.add(slice, reader.rowsRead - slice.length)) break;
    await nextTurn(request);
  }
  if (reader.rowsRead === 0) throw noRows();
  return checker;
}

/** Lets other requests (and /health) run, then stops if the caller has hung up meanwhile. */
async function nextTurn(request: FastifyRequest): Promise<void> {
  await yieldToLoop();
  if (clientGone(request)) throw new ClientGone();
}
