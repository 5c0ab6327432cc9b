import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OrchestrationClient } from '../../shared/pipeline/orchestrationClient';

/**
 * Fault injection below our code: a loopback proxy in front of Azurite's blob and table ports (the
 * SDKs speak the real wire format through it) and a wrapper of the Durable client interface. Both
 * count calls in one sequence so a test can say "fail call i once with 503" or "kill the process
 * right after effect j completed". After a kill every later call fails too, as nothing runs in a
 * dead worker; `disarm()` is the restart.
 */
export type Fault =
  | { kind: 'none' }
  | { kind: 'fail'; atCall: number; status: 503 | 409 | 412 }
  | { kind: 'kill'; afterEffect: number };

export interface CallLog {
  label: string;
  effect: boolean;
}

export class FaultPlan {
  fault: Fault = { kind: 'none' };
  calls: CallLog[] = [];
  private effects = 0;
  killed = false;
  fired = false;

  arm(fault: Fault): void {
    this.fault = fault;
    this.calls = [];
    this.effects = 0;
    this.killed = false;
    this.fired = false;
  }

  disarm(): void {
    this.arm({ kind: 'none' });
  }

  /** Called before a call: an injected status, 'dead' after a kill, or null to go ahead. */
  before(label: string, effect: boolean): number | 'dead' | null {
    if (this.killed) return 'dead';
    this.calls.push({ label, effect });
    const index = this.calls.length - 1;
    if (this.fault.kind === 'fail' && this.fault.atCall === index) {
      this.fired = true;
      return this.fault.status;
    }
    return null;
  }

  /** Called after a call completed: true when the worker dies right here. */
  after(effect: boolean): boolean {
    if (!effect) return false;
    this.effects += 1;
    if (this.fault.kind === 'kill' && this.fault.afterEffect === this.effects - 1) {
      this.killed = true;
      this.fired = true;
      return true;
    }
    return false;
  }
}

export class KilledError extends Error {
  constructor() {
    super('worker killed (injected)');
  }
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

function errorBody(service: 'blob' | 'table', status: number): { type: string; body: string } {
  const code = status === 503 ? 'ServerBusy' : status === 409 ? 'Conflict' : 'ConditionNotMet';
  if (service === 'table') {
    return {
      type: 'application/json',
      body: JSON.stringify({
        'odata.error': { code, message: { lang: 'en-US', value: `injected ${status}` } },
      }),
    };
  }
  return {
    type: 'application/xml',
    body: `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>injected ${status}</Message></Error>`,
  };
}

export interface FaultProxy {
  port: number;
  close(): Promise<void>;
}

export async function startFaultProxy(
  service: 'blob' | 'table',
  upstreamPort: number,
  plan: FaultPlan,
): Promise<FaultProxy> {
  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const effect = !READS.has(method);
    const label = `${service} ${method} ${decodeURIComponent((req.url ?? '').split('?')[0])}`;
    const verdict = plan.before(label, effect);
    if (verdict === 'dead') {
      req.socket.destroy();
      return;
    }
    if (typeof verdict === 'number') {
      req.resume();
      const { type, body } = errorBody(service, verdict);
      res.writeHead(verdict, {
        'content-type': type,
        'x-ms-error-code':
          type === 'application/xml' ? body.slice(body.indexOf('<Code>') + 6, body.indexOf('</Code>')) : '',
      });
      res.end(body);
      return;
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: upstreamPort, method, path: req.url, headers: req.headers },
      (response) => {
        if (!effect) {
          res.writeHead(response.statusCode ?? 502, response.headers);
          response.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('end', () => {
          if (plan.after(true)) {
            // The effect happened; the worker never hears back.
            req.socket.destroy();
            return;
          }
          res.writeHead(response.statusCode ?? 502, response.headers);
          res.end(Buffer.concat(chunks));
        });
      },
    );
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The Durable client with the same plan: status is a read, startNew and raiseEvent are effects. */
export function faultyOrchestrationClient(inner: OrchestrationClient, plan: FaultPlan): OrchestrationClient {
  const call = async <T>(label: string, effect: boolean, run: () => Promise<T>): Promise<T> => {
    const verdict = plan.before(`durable ${label}`, effect);
    if (verdict === 'dead') throw new KilledError();
    if (typeof verdict === 'number') {
      throw Object.assign(new Error(`injected ${verdict} from the Durable client`), { statusCode: verdict });
    }
    const result = await run();
    if (plan.after(effect)) throw new KilledError();
    return result;
  };
  return {
    status: (instanceId) => call('status', false, () => inner.status(instanceId)),
    startNew: (name, instanceId, input) =>
      call('startNew', true, () => inner.startNew(name, instanceId, input)),
    raiseEvent: (instanceId, eventName, data) =>
      call('raiseEvent', true, () => inner.raiseEvent(instanceId, eventName, data)),
  };
}

/** Azurite's connection string with the blob and table endpoints moved to the proxies. */
export function proxiedConnectionString(
  connectionString: string,
  blobPort: number,
  tablePort: number,
): string {
  return connectionString
    .replace(/BlobEndpoint=http:\/\/127\.0\.0\.1:\d+/, `BlobEndpoint=http://127.0.0.1:${blobPort}`)
    .replace(/TableEndpoint=http:\/\/127\.0\.0\.1:\d+/, `TableEndpoint=http://127.0.0.1:${tablePort}`);
}

/**
 * A blob and a table fault proxy in front of the Azurite behind `connectionString`, both driven by
 * `plan`, with the connection string that routes through them.
 */
export async function startStorageFaultProxies(
  connectionString: string,
  plan: FaultPlan,
): Promise<{ proxies: FaultProxy[]; connectionString: string }> {
  const portOf = (endpoint: 'Blob' | 'Table'): number => {
    const match = new RegExp(`${endpoint}Endpoint=http://127\\.0\\.0\\.1:(\\d+)`).exec(connectionString);
    if (!match) throw new Error(`no loopback ${endpoint}Endpoint in the connection string`);
    return Number(match[1]);
  };
  const blob = await startFaultProxy('blob', portOf('Blob'), plan);
  const table = await startFaultProxy('table', portOf('Table'), plan);
  return {
    proxies: [blob, table],
    connectionString: proxiedConnectionString(connectionString, blob.port, table.port),
  };
}
