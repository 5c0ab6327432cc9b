import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { buildServer, type ModelApiOptions, type ServingModel } from '../../../containers/model-api/server';

/** A key long enough for key mode; tests make their own, as `npm start` makes one per run. */
export const TEST_API_KEY = 'k'.repeat(16) + 'test-key-0123456789abcdef';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON, or the raw text when the body is not JSON. */
  body: Record<string, unknown>;
  bytes: number;
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Default: Bearer TEST_API_KEY; null sends no Authorization header. */
  token?: string | null;
}

export interface Api {
  port: number;
  call(method: 'GET' | 'POST', path: string, options?: CallOptions): Promise<Answer>;
  close(): Promise<void>;
}

/**
 * The server on a real loopback listener, called with Node's http(s) client over one keep-alive
 * agent. (Fastify's inject needs light-my-request, whose ESM-only cookie dependency jest cannot load.)
 */
export async function serve(
  source: ServingModel | Promise<ServingModel>,
  options: Partial<ModelApiOptions> & { ca?: string } = {},
): Promise<Api> {
  const app = buildServer(source, { auth: { kind: 'key', key: TEST_API_KEY }, ...options });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const secure = options.transport?.kind === 'https';
  const agent = secure
    ? new https.Agent({ keepAlive: true, ca: options.ca })
    : new http.Agent({ keepAlive: true });
  const client = secure ? https : http;
  const call = (method: string, path: string, o: CallOptions = {}): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const payload = o.body === undefined || typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      const headers: Record<string, string> =
        payload === undefined ? {} : { 'content-type': 'application/json' };
      const token = o.token === undefined ? TEST_API_KEY : o.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      Object.assign(headers, o.headers);
      const request = client.request(
        { host: '127.0.0.1', port, path, method, agent, headers },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => {
            let body: Record<string, unknown>;
            try {
              body = JSON.parse(text) as Record<string, unknown>;
            } catch {
              body = { text };
            }
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body,
              bytes: text.length,
            });
          });
        },
      );
      request.on('error', reject);
      request.end(payload);
    });
  return {
    port,
    call,
    close: async () => {
      agent.destroy();
      await app.close();
    },
  };
}
