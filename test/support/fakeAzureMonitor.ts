import { selfSignedCertificate } from './selfSignedCertificate';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';

/**
 * A loopback Azure Monitor metrics data plane speaking the batch wire format of api-version
 * 2024-02-01, as `@azure/monitor-query-metrics` 1.0.0 calls it:
 *   POST /subscriptions/{sub}/metrics:getBatch?starttime=…&endtime=…&interval=PT1M
 *        &metricnamespace=…&metricnames=CpuUsage,MemoryUsage&aggregation=Average,Maximum&api-version=2024-02-01
 *   body {"resourceids":[…]}
 *   200  {"values":[{starttime,endtime,interval,namespace,resourceregion,resourceid,
 *          value:[{id,type,name:{value,localizedValue},displayDescription,unit,errorCode,
 *                  timeseries:[{metadatavalues:[],data:[{timeStamp,average,maximum}]}]}]}]}
 * Points are served exactly as the fixture gives them (timestamp-only points and absent minutes
 * are both how the real service shows missing data), filtered to the requested window and
 * aggregations. HTTPS with a throwaway certificate: the SDK's bearer policy refuses plain http.
 */
export const FAKE_METRICS_API_VERSION = '2024-02-01';

export interface FakePoint {
  timeStamp: string;
  average?: number | null;
  maximum?: number | null;
  total?: number | null;
}

/** Time series per metric (one per container when split by `containerName`). */
export interface FakeResourceMetrics {
  CpuUsage?: FakePoint[][];
  MemoryUsage?: FakePoint[][];
  /** Container Apps (`Microsoft.App/containerApps`). */
  Replicas?: FakePoint[][];
  Requests?: FakePoint[][];
  /** Per-metric error the service reports instead of data. */
  errors?: Partial<Record<KnownMetric, { code: string; message: string }>>;
}

export interface FakeMonitorFault {
  status: number;
  /** Objects go out as JSON, strings verbatim (malformed bodies). */
  body?: unknown;
  /** e.g. `retry-after-ms` on a 429, which is what makes the SDK's throttling policy retry. */
  headers?: Record<string, string>;
  times?: number;
}

export interface RecordedMetricsRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
  body: string;
  status: number;
}

export interface FakeAzureMonitor {
  readonly endpoint: string;
  readonly caPem: string;
  readonly subscriptionId: string;
  readonly requests: RecordedMetricsRequest[];
  setMetrics(resourceId: string, metrics: FakeResourceMetrics): void;
  inject(fault: FakeMonitorFault): void;
  close(): Promise<void>;
}

const METRIC_INFO = {
  CpuUsage: { localized: 'CPU Usage', unit: 'Count', description: 'CPU usage on all cores in millicores.' },
  MemoryUsage: { localized: 'Memory Usage', unit: 'Bytes', description: 'Total memory usage in byte.' },
  Replicas: {
    localized: 'Replica Count',
    unit: 'Count',
    description: 'Number of replicas count of container app',
  },
  Requests: { localized: 'Requests', unit: 'Count', description: 'Requests processed' },
} as const;
type KnownMetric = keyof typeof METRIC_INFO;

export const TEST_TOKEN = 'test-token-not-a-secret';

/** A credential that returns a fixed token and records the scopes it was asked for. */
export function fixedTokenCredential(token = TEST_TOKEN): TokenCredential & { scopes: string[][] } {
  const scopes: string[][] = [];
  return {
    scopes,
    async getToken(requested: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
      scopes.push(Array.isArray(requested) ? requested : [requested]);
      return { token, expiresOnTimestamp: Date.now() + 3_600_000 };
    },
  };
}

export async function startFakeAzureMonitor(
  options: { subscriptionId?: string; region?: string; token?: string } = {},
): Promise<FakeAzureMonitor> {
  const subscriptionId = options.subscriptionId ?? '00000000-0000-4000-8000-00000000a1a1';
  const region = options.region ?? 'westeurope';
  const token = options.token ?? TEST_TOKEN;
  const { keyPem, certPem } = selfSignedCertificate();
  const metrics = new Map<string, FakeResourceMetrics>();
  const faults: (FakeMonitorFault & { left: number })[] = [];
  const requests: RecordedMetricsRequest[] = [];

  function handle(
    req: IncomingMessage,
    body: string,
  ): { status: number; payload: unknown; headers?: Record<string, string> } {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const fault = faults.find((f) => f.left > 0);
    if (fault) {
      fault.left -= 1;
      return {
        status: fault.status,
        payload: fault.body ?? { error: { code: 'Injected', message: 'injected' } },
        ...(fault.headers ? { headers: fault.headers } : {}),
      };
    }
    const match = /^\/subscriptions\/([^/]+)\/metrics:getBatch$/.exec(url.pathname);
    if (req.method !== 'POST' || !match) {
      return {
        status: 404,
        payload: { error: { code: 'NotFound', message: `no route ${req.method} ${url.pathname}` } },
      };
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      return {
        status: 401,
        payload: { error: { code: 'InvalidAuthenticationToken', message: 'The access token is invalid.' } },
      };
    }
    if (url.searchParams.get('api-version') !== FAKE_METRICS_API_VERSION) {
      return { status: 400, payload: { error: { code: 'BadRequest', message: 'unsupported api-version' } } };
    }
    if (match[1] !== subscriptionId) {
      return {
        status: 403,
        payload: { error: { code: 'AuthorizationFailed', message: 'wrong subscription' } },
      };
    }
    let resourceIds: string[];
    try {
      const parsed = JSON.parse(body) as { resourceids?: unknown };
      if (!Array.isArray(parsed.resourceids) || !parsed.resourceids.every((r) => typeof r === 'string')) {
        throw new Error('resourceids must be an array of strings');
      }
      resourceIds = parsed.resourceids as string[];
    } catch (error) {
      return { status: 400, payload: { error: { code: 'BadRequest', message: String(error) } } };
    }
    const startTime = url.searchParams.get('starttime');
    const endTime = url.searchParams.get('endtime');
    const interval = url.searchParams.get('interval') ?? 'PT1M';
    const namespace = url.searchParams.get('metricnamespace') ?? '';
    if (!startTime || !endTime) {
      return {
        status: 400,
        payload: { error: { code: 'BadRequest', message: 'starttime and endtime required' } },
      };
    }
    const fromMs = Date.parse(startTime);
    const toMs = Date.parse(endTime);
    const names = (url.searchParams.get('metricnames') ?? '').split(',').filter(Boolean);
    const aggregations = (url.searchParams.get('aggregation') ?? 'average')
      .split(',')
      .map((a) => a.trim().toLowerCase());
    for (const name of names) {
      if (!(name in METRIC_INFO)) {
        return { status: 400, payload: { error: { code: 'BadRequest', message: `unknown metric ${name}` } } };
      }
    }
    const values = resourceIds.map((resourceId) => {
      const stored = metrics.get(resourceId.toLowerCase()) ?? {};
      return {
        starttime: new Date(fromMs).toISOString().replace('.000Z', 'Z'),
        endtime: new Date(toMs).toISOString().replace('.000Z', 'Z'),
        interval,
        namespace,
        resourceregion: region,
        resourceid: resourceId,
        value: (names as KnownMetric[]).map((name) => {
          const error = stored.errors?.[name];
          const series = error ? [] : (stored[name] ?? []);
          return {
            id: `${resourceId}/providers/Microsoft.Insights/metrics/${name}`,
            type: 'Microsoft.Insights/metrics',
            name: { value: name, localizedValue: METRIC_INFO[name].localized },
            displayDescription: METRIC_INFO[name].description,
            unit: METRIC_INFO[name].unit,
            errorCode: error ? error.code : 'Success',
            ...(error ? { errorMessage: error.message } : {}),
            timeseries: series.map((points) => ({
              metadatavalues: [],
              data: points
                .filter((p) => {
                  const at = Date.parse(p.timeStamp);
                  return at >= fromMs && at < toMs;
                })
                .map((p) => ({
                  timeStamp: p.timeStamp,
                  ...(aggregations.includes('average') && p.average !== undefined
                    ? { average: p.average }
                    : {}),
                  ...(aggregations.includes('maximum') && p.maximum !== undefined
                    ? { maximum: p.maximum }
                    : {}),
                  ...(aggregations.includes('total') && p.total !== undefined ? { total: p.total } : {}),
                })),
            })),
          };
        }),
      };
    });
    return { status: 200, payload: { values } };
  }

  const server = https.createServer({ key: keyPem, cert: certPem }, (req, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const { status, payload, headers } = handle(req, body);
      const url = new URL(req.url ?? '/', 'https://127.0.0.1');
      requests.push({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        authorization: req.headers.authorization,
        body,
        status,
      });
      const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `https://127.0.0.1:${port}`,
    caPem: certPem,
    subscriptionId,
    requests,
    setMetrics: (resourceId, m) => metrics.set(resourceId.toLowerCase(), m),
    inject: (fault) => faults.push({ ...fault, left: fault.times ?? 1 }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
