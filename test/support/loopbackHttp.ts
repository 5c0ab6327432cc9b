import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 for provider tests: clients speak the actual wire protocol (status
 * lines, headers, JSON bodies, slow or dropped responses) instead of a stubbed fetch. Routes are
 * `METHOD /path` (query ignored when matching); each can answer from a handler or from a script of
 * responses consumed one per request (the last one repeats). Every request is recorded.
 */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface ScriptedResponse {
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Objects are sent as JSON; strings are sent verbatim (for malformed bodies). */
  readonly body?: unknown;
  /** Wait this long before answering (to exercise timeouts). */
  readonly delayMs?: number;
  /** Drop the connection without answering (a network error for the client). */
  readonly hangUp?: boolean;
}

export type RouteHandler = (request: RecordedRequest) => ScriptedResponse | Promise<ScriptedResponse>;

export interface LoopbackServer {
  readonly baseUrl: string;
  readonly requests: readonly RecordedRequest[];
  /** Answers every request to the route with the handler. */
  route(method: string, path: string, handler: RouteHandler | ScriptedResponse): LoopbackServer;
  /** Answers successive requests with successive responses; the last one repeats. */
  script(method: string, path: string, responses: readonly ScriptedResponse[]): LoopbackServer;
  requestsTo(path: string): RecordedRequest[];
  close(): Promise<void>;
}

export async function startLoopbackServer(): Promise<LoopbackServer> {
  const routes = new Map<string, RouteHandler>();
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      const handler = routes.get(`${recorded.method} ${recorded.path}`);
      const answer = async (): Promise<void> => {
        const response: ScriptedResponse = handler
          ? await handler(recorded)
          : { status: 404, body: { error: `no route for ${recorded.method} ${recorded.path}` } };
        const send = (): void => {
          if (response.hangUp) {
            req.socket.destroy();
            return;
          }
          const isText = typeof response.body === 'string';
          const payload =
            response.body === undefined
              ? ''
              : isText
                ? (response.body as string)
                : JSON.stringify(response.body);
          res.writeHead(response.status ?? 200, {
            'content-type': isText ? 'text/plain' : 'application/json',
            ...response.headers,
          });
          res.end(payload);
        };
        if (response.delayMs) {
          const timer = setTimeout(() => {
            timers.delete(timer);
            if (!res.destroyed) send();
          }, response.delayMs);
          timers.add(timer);
        } else send();
      };
      answer().catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`loopback handler failed: ${String(error)}`);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const self: LoopbackServer = {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    route(method, path, handler) {
      const fn: RouteHandler = typeof handler === 'function' ? handler : () => handler;
      routes.set(`${method.toUpperCase()} ${path}`, fn);
      return self;
    },
    script(method, path, responses) {
      if (responses.length === 0) throw new Error('script needs at least one response');
      let next = 0;
      routes.set(`${method.toUpperCase()} ${path}`, () => responses[Math.min(next++, responses.length - 1)]);
      return self;
    },
    requestsTo(path) {
      return requests.filter((r) => r.path === path);
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return self;
}

/** Records requested sleeps instead of waiting, so retry tests run instantly and can assert delays. */
export function recordingSleep(): { sleep: (ms: number) => Promise<void>; delaysMs: number[] } {
  const delaysMs: number[] = [];
  return {
    delaysMs,
    sleep: async (ms: number) => {
      delaysMs.push(ms);
    },
  };
}
