import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import { z } from 'zod';
import { ConfigError, describeError } from '../errors';
import { describeIssues, parseWith } from '../validation';

/**
 * Local scale to zero for the model API (issue 11): a loopback reverse proxy that owns at most one
 * replica. The first request while at zero starts one (and times that cold start), concurrent
 * first requests share that start, and the replica is stopped once no request has been in flight
 * for `idleTimeoutMs`. Replica-seconds are what is reserved: they accrue from the moment a start
 * begins until its stop has finished, and never while at zero.
 */
export interface ScaleToZeroReplica {
  readonly url: string;
  stop(): Promise<void>;
  /**
   * PEM of the certificate authority an https replica's certificate chains to (a self-signed
   * local certificate); absent means the system's trust store.
   */
  readonly ca?: string;
}

export interface ScaleToZeroFrontOptions {
  /** Starts one model-API replica; resolves once it answers /health. */
  startReplica(): Promise<ScaleToZeroReplica>;
  /** Scale to zero after this long without a request in flight. */
  idleTimeoutMs: number;
  /** Clock for the usage accounting (ms); default Date.now. */
  now?: () => number;
  /** Listen address: loopback only, default 127.0.0.1 and a free port. */
  host?: string;
  port?: number;
}

export interface ScaleToZeroUsage {
  readonly replicaSeconds: number;
  readonly coldStarts: number;
  readonly coldStartMs: readonly number[];
  readonly requests: number;
  readonly failedRequests: number;
  readonly running: boolean;
}

export interface ScaleToZeroFront {
  readonly url: string;
  usage(): ScaleToZeroUsage;
  close(): Promise<void>;
}

const LOOPBACK_HOST = z
  .string()
  .refine((host) => host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host), {
    message: 'the front listens on loopback only (127.x.x.x, ::1 or localhost)',
  });

const OPTIONS_SCHEMA = z.object({
  idleTimeoutMs: z.number().int().positive(),
  host: LOOPBACK_HOST.default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(0),
});

const REPLICA_URL = z.url({ protocol: /^https?$/ });

/**
 * Connection-specific headers (RFC 9110 §7.6.1) are for one hop only; a proxy drops them, and also
 * any header the Connection header names. Host is set by the upstream request itself.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export function endToEndHeaders(headers: IncomingHttpHeaders, dropHost: boolean): IncomingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter((token) => token !== ''),
  );
  const kept: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (HOP_BY_HOP.has(name) || named.has(name) || (dropHost && name === 'host')) continue;
    kept[name] = value;
  }
  return kept;
}

interface LiveReplica {
  readonly replica: ScaleToZeroReplica;
  readonly url: URL;
  readonly agent: http.Agent;
}

type ReplicaState =
  | { readonly phase: 'zero' }
  | { readonly phase: 'starting'; readonly ready: Promise<LiveReplica> }
  | { readonly phase: 'running'; readonly live: LiveReplica }
  | { readonly phase: 'stopping'; readonly stopped: Promise<void> };

function sendJson(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

export async function startScaleToZeroFront(options: ScaleToZeroFrontOptions): Promise<ScaleToZeroFront> {
  const checked = OPTIONS_SCHEMA.safeParse({
    idleTimeoutMs: options.idleTimeoutMs,
    host: options.host,
    port: options.port,
  });
  if (!checked.success) {
    const problems = describeIssues(checked.error).map((i) => ({ key: i.path, reason: i.message }));
    throw new ConfigError(
      `Invalid scale-to-zero front options: ${problems.map((p) => `${p.key}: ${p.reason}`).join('; ')}`,
      problems,
    );
  }
  const { idleTimeoutMs, host, port } = checked.data;
  const now = options.now ?? Date.now;

  let state: ReplicaState = { phase: 'zero' };
  let closed = false;
  let inFlight = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  /** Replica-seconds of finished reservations, plus the start of the open one (if any). */
  let reservedMs = 0;
  let reservedSinceMs: number | undefined;
  const coldStartMs: number[] = [];
  let requests = 0;
  let failedRequests = 0;

  const openReservation = (): void => {
    reservedSinceMs ??= now();
  };
  const closeReservation = (): void => {
    if (reservedSinceMs === undefined) return;
    reservedMs += Math.max(0, now() - reservedSinceMs);
    reservedSinceMs = undefined;
  };

  const clearIdleTimer = (): void => {
    if (idleTimer !== undefined) clearTimeout(idleTimer);
    idleTimer = undefined;
  };

  /** Stops the current replica, whatever phase it is in; resolves once it is gone. */
  const retire = (live: LiveReplica): Promise<void> => {
    clearIdleTimer();
    const stopped = (async () => {
      live.agent.destroy();
      try {
        await live.replica.stop();
      } finally {
        closeReservation();
        state = { phase: 'zero' };
      }
    })();
    state = { phase: 'stopping', stopped };
    return stopped;
  };

  const armIdleTimer = (): void => {
    clearIdleTimer();
    if (inFlight > 0 || state.phase !== 'running' || closed) return;
    const { live } = state;
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      if (inFlight === 0 && state.phase === 'running' && state.live === live) {
        // A failed stop leaves nothing we could retry here; close() reports its own attempt.
        retire(live).catch(() => undefined);
      }
    }, idleTimeoutMs);
    idleTimer.unref();
  };

  const beginStart = (): Promise<LiveReplica> => {
    const startedAtMs = now();
    openReservation();
    const ready = (async (): Promise<LiveReplica> => {
      let replica: ScaleToZeroReplica;
      try {
        replica = await options.startReplica();
      } catch (error) {
        closeReservation();
        state = { phase: 'zero' };
        throw error;
      }
      let url: URL;
      try {
        url = new URL(parseWith(REPLICA_URL, replica.url, 'replica URL'));
      } catch (error) {
        await replica.stop().finally(() => {
          closeReservation();
          state = { phase: 'zero' };
        });
        throw error;
      }
      const agent =
        url.protocol === 'https:'
          ? new https.Agent({ keepAlive: true, ca: replica.ca })
          : new http.Agent({ keepAlive: true });
      const live: LiveReplica = { replica, url, agent };
      coldStartMs.push(Math.max(0, now() - startedAtMs));
      state = { phase: 'running', live };
      // The requests that asked for this start may all have gone meanwhile.
      armIdleTimer();
      return live;
    })();
    state = { phase: 'starting', ready };
    return ready;
  };

  const acquire = async (): Promise<LiveReplica> => {
    for (;;) {
      if (closed) throw new ConfigError('The scale-to-zero front is closed', []);
      switch (state.phase) {
        case 'running':
          return state.live;
        case 'starting':
          return state.ready;
        case 'stopping':
          await state.stopped.catch(() => undefined);
          break;
        case 'zero':
          return beginStart();
      }
    }
  };

  const forward = (live: LiveReplica, req: IncomingMessage, res: ServerResponse): void => {
    const client = live.url.protocol === 'https:' ? https : http;
    const upstream = client.request(
      {
        protocol: live.url.protocol,
        hostname: live.url.hostname,
        port: live.url.port,
        method: req.method,
        path: req.url,
        headers: endToEndHeaders(req.headers, true),
        agent: live.agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEndHeaders(answer.headers, false));
        pipeline(answer, res, () => undefined);
      },
    );
    let callerGone = false;
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (callerGone) return;
      failedRequests += 1;
      sendJson(res, 502, { error: 'bad_gateway', message: `The model API did not answer: ${error.message}` });
      // A refused connection means the replica is gone (crashed or killed): the next request starts anew.
      if (error.code === 'ECONNREFUSED' && state.phase === 'running' && state.live === live) {
        retire(live).catch(() => undefined);
      }
    });
    res.once('close', () => {
      if (res.writableFinished) return;
      callerGone = true;
      upstream.destroy();
    });
    pipeline(req, upstream, () => undefined);
  };

  const server = http.createServer((req, res) => {
    requests += 1;
    inFlight += 1;
    clearIdleTimer();
    res.once('close', () => {
      inFlight -= 1;
      armIdleTimer();
    });
    acquire().then(
      (live) => forward(live, req, res),
      (error: unknown) => {
        failedRequests += 1;
        req.resume();
        sendJson(res, 503, {
          error: 'model_api_unavailable',
          message: `The model API replica could not be started: ${describeError(error)}`,
        });
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      closed = true;
      clearIdleTimer();
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      const current: ReplicaState = state;
      try {
        // A start under way is waited for, so that the replica it brings up is stopped too.
        if (current.phase === 'starting') await current.ready.catch(() => undefined);
        else if (current.phase === 'stopping') await current.stopped.catch(() => undefined);
        const settled: ReplicaState = state;
        if (settled.phase === 'running') await retire(settled.live);
        else if (settled.phase === 'stopping') await settled.stopped;
      } finally {
        await serverClosed;
      }
    })();
    return closing;
  };

  return {
    url,
    usage: () => ({
      replicaSeconds:
        (reservedMs + (reservedSinceMs === undefined ? 0 : Math.max(0, now() - reservedSinceMs))) / 1000,
      coldStarts: coldStartMs.length,
      coldStartMs: [...coldStartMs],
      requests,
      failedRequests,
      running: state.phase === 'running' || state.phase === 'starting',
    }),
    close,
  };
}
