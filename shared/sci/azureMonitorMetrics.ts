import { isRetryableStatus } from '../errors/classify';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { MetricsClient, type MetricsClientOptions } from '@azure/monitor-query-metrics';
import { z } from 'zod';
import { isGreenMlError, ProviderError, ValidationError } from '../errors';
import { parseWith } from '../validation';
import { ASSUMED_UTILISATION, type UsageInterval } from './energy';

/**
 * CPU and memory of one ACI container group for exactly its lifetime, from Azure Monitor's
 * regional metrics batch endpoint (`@azure/monitor-query-metrics`, POST …/metrics:getBatch).
 * `CpuUsage` is millicores summed over the group's cores, `MemoryUsage` bytes (notes
 * energy-sci-aci.md §5). Query before deleting the group: the metrics are resolved through the resource.
 *
 * Honesty rules: a minute without data is a gap, never a zero; CPU time over gaps is extrapolated
 * from the measured minutes and labelled so; a run shorter than one grain, or with no CPU data at
 * all, falls back to CCF's 50 % utilisation and says why.
 */
export const ACI_METRIC_NAMESPACE = 'Microsoft.ContainerInstance/containerGroups';
export const GRAIN = 'PT1M';
const GRAIN_MS = 60_000;
const GRAINS_PER_QUERY = 1440;
const PROVIDER = 'azure-monitor';

export type MetricName = 'CpuUsage' | 'MemoryUsage';
/** Container Apps metrics: `Replicas` is the replica count, `Requests` the requests through ingress. */
export const CONTAINER_APPS_METRIC_NAMESPACE = 'Microsoft.App/containerApps';
export type AppMetricName = 'Replicas' | 'Requests';

export interface MetricSample {
  /** Start of the PT1M grain. */
  readonly at: string;
  /** Average over the grain, summed over the group's containers; null = no data. */
  readonly cpuMillicores: number | null;
  readonly memoryBytes: number | null;
}

export interface MetricGap {
  readonly metric: MetricName;
  readonly from: string;
  readonly to: string;
}

export type ContainerUtilisation =
  | { readonly source: 'measured'; readonly fraction: number }
  | { readonly source: 'measured-with-gaps'; readonly fraction: number }
  | {
      readonly source: 'assumed-50%';
      readonly fraction: number;
      readonly reason: 'shorter-than-grain' | 'no-cpu-data';
    };

export interface ContainerMetrics {
  readonly resourceId: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly grain: typeof GRAIN;
  readonly samples: MetricSample[];
  readonly gaps: MetricGap[];
  /** CPU time over the whole lifetime: measured, extrapolated over gaps, or assumed (see `utilisation`). */
  readonly cpuSeconds: number;
  /** CPU time in the minutes that had data; null when utilisation is assumed. */
  readonly measuredCpuSeconds: number | null;
  readonly peakMemoryBytes: number | null;
  /** Share of the lifetime's minutes with CPU data, 0..1. */
  readonly coverage: number;
  readonly utilisation: ContainerUtilisation;
}

export interface ContainerMetricsQuery {
  /** ARM id of the container group (`/subscriptions/…/containerGroups/<name>`). */
  readonly resourceId: string;
  readonly startedAt: string;
  readonly endedAt: string;
  /** vCPUs requested, the denominator of utilisation. */
  readonly vcpus: number;
}

/** A resource's id of the given shape and a period within which its metrics are read. */
function periodQuerySchema(idPattern: RegExp, idLabel: string) {
  return z.object({
    resourceId: z.string().regex(idPattern, `must be a ${idLabel} resource id`),
    startedAt: z.iso.datetime({ offset: true }),
    endedAt: z.iso.datetime({ offset: true }),
  });
}
const endsAfterStart = (q: { startedAt: string; endedAt: string }): boolean =>
  Date.parse(q.endedAt) >= Date.parse(q.startedAt);
const ENDS_AFTER_START = { path: ['endedAt'], message: 'is before startedAt' };

const QUERY_SCHEMA = periodQuerySchema(
  /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.ContainerInstance\/containerGroups\/[^/]+$/i,
  'container group',
)
  .extend({ vcpus: z.number().finite().positive() })
  .refine(endsAfterStart, ENDS_AFTER_START);

export interface AppReplicaQuery {
  /** ARM id of the container app (`/subscriptions/…/containerApps/<name>`). */
  readonly resourceId: string;
  readonly startedAt: string;
  readonly endedAt: string;
}

export interface AppReplicaMetrics {
  readonly resourceId: string;
  /** PT1M grains the period touches, and those with a `Replicas` value. */
  readonly minutes: number;
  readonly minutesWithData: number;
  /** Σ replicas × seconds over the minutes with data. */
  readonly replicaSeconds: number;
  /** Requests through ingress; null when no minute had data. */
  readonly requests: number | null;
}

const APP_QUERY_SCHEMA = periodQuerySchema(
  /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.App\/containerApps\/[^/]+$/i,
  'container app',
).refine(endsAfterStart, ENDS_AFTER_START);

// The SDK's deserialised result; validated because it is a passthrough of the service's JSON.
const METRIC_VALUE_SCHEMA = z.object({
  timeStamp: z.date(),
  average: z.number().finite().nullish(),
  maximum: z.number().finite().nullish(),
  total: z.number().finite().nullish(),
});
const METRIC_SCHEMA = z.object({
  id: z.string().nullish(),
  name: z.string(),
  unit: z.string().nullish(),
  errorCode: z.string().nullish(),
  errorMessage: z.string().nullish(),
  timeseries: z.array(z.object({ data: z.array(METRIC_VALUE_SCHEMA).nullish() })),
});
const RESULTS_SCHEMA = z.array(
  z.object({
    resourceId: z.string().nullish(),
    metrics: z.array(METRIC_SCHEMA),
  }),
);
type ParsedMetric = z.output<typeof METRIC_SCHEMA>;

const REST_ERROR_SCHEMA = z.object({
  name: z.literal('RestError'),
  message: z.string(),
  statusCode: z.number().int().optional(),
  code: z.string().optional(),
});

export interface AzureMonitorMetricsOptions {
  /** Regional data-plane endpoint, e.g. https://westeurope.metrics.monitor.azure.com. */
  readonly endpoint: string;
  /** Defaults to DefaultAzureCredential (managed identity on Azure). */
  readonly credential?: TokenCredential;
  readonly managedIdentityClientId?: string;
  readonly audience?: string;
  readonly timeoutMs?: number;
  readonly maxRetries?: number;
  readonly retryDelayMs?: number;
  /** Extra CA to trust (replaces the public roots): only for a loopback endpoint in tests. */
  readonly trustedCaPem?: string;
}

/** `METRICS_ENDPOINT` if set, else the region's public endpoint. */
export function metricsEndpointFor(region: string, override?: string): string {
  if (override) return override.replace(/\/+$/, '');
  if (!/^[a-z0-9]+$/.test(region)) {
    throw new ValidationError(`Invalid region ${JSON.stringify(region)} for the metrics endpoint`, [
      { path: 'region', message: 'lowercase Azure region name' },
    ]);
  }
  return `https://${region}.metrics.monitor.azure.com`;
}

export class AzureMonitorMetrics {
  private readonly client: MetricsClient;
  private readonly timeoutMs: number;

  constructor(options: AzureMonitorMetricsOptions) {
    const credential =
      options.credential ??
      new DefaultAzureCredential(
        options.managedIdentityClientId ? { managedIdentityClientId: options.managedIdentityClientId } : {},
      );
    const clientOptions: MetricsClientOptions = {
      ...(options.audience ? { audience: options.audience } : {}),
      retryOptions: { maxRetries: options.maxRetries ?? 3, retryDelayInMs: options.retryDelayMs ?? 1000 },
      ...(options.trustedCaPem ? { tlsOptions: { ca: options.trustedCaPem } } : {}),
    };
    this.client = new MetricsClient(options.endpoint.replace(/\/+$/, ''), credential, clientOptions);
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Per-minute CPU and memory of a container group between `startedAt` and `endedAt`. */
  async containerUsage(query: ContainerMetricsQuery): Promise<ContainerMetrics> {
    const q = parseWith(QUERY_SCHEMA, query, 'container metrics query');
    const window = grainWindow(q.startedAt, q.endedAt);
    if (window.minutes === 0) return summarise(q, window, new Map());
    const byName = await this.queryOne(
      q.resourceId,
      ['CpuUsage', 'MemoryUsage'] as const,
      ACI_METRIC_NAMESPACE,
      window,
      'Average,Maximum',
    );
    return summarise(q, window, byName);
  }

  /**
   * Replica-seconds and ingress requests of a Container App between `startedAt` and `endedAt`:
   * each minute counts its maximum replica count for the part of the minute inside the period (a
   * replica reserved for part of a minute is billed and powered for it). Minutes without data are
   * gaps, never zeros: the caller decides what an incomplete measurement is worth.
   */
  async containerAppReplicas(query: AppReplicaQuery): Promise<AppReplicaMetrics> {
    const q = parseWith(APP_QUERY_SCHEMA, query, 'container app replica query');
    const window = grainWindow(q.startedAt, q.endedAt);
    // A serving period can last weeks: one day of PT1M grains per request keeps each answer small.
    const byName = new Map<AppMetricName, ParsedMetric>();
    for (let offset = 0; offset < window.minutes; offset += GRAINS_PER_QUERY) {
      const chunk: GrainWindow = {
        ...window,
        firstMs: window.firstMs + offset * GRAIN_MS,
        minutes: Math.min(GRAINS_PER_QUERY, window.minutes - offset),
      };
      const part = await this.queryOne(
        q.resourceId,
        ['Replicas', 'Requests'] as const,
        CONTAINER_APPS_METRIC_NAMESPACE,
        chunk,
        'Maximum,Total',
      );
      // Chunks cover disjoint minutes, so their series can be summed per minute like split series.
      for (const [name, metric] of part) {
        const seen = byName.get(name);
        byName.set(name, seen ? { ...seen, timeseries: [...seen.timeseries, ...metric.timeseries] } : metric);
      }
    }
    const replicas = perGrain(byName.get('Replicas'), window, 'maximum');
    const requests = perGrain(byName.get('Requests'), window, 'total');
    let replicaSeconds = 0;
    replicas.forEach((count, i) => {
      if (count !== null) replicaSeconds += count * overlapSeconds(window, i);
    });
    const counted = requests.filter((r): r is number => r !== null);
    return {
      resourceId: q.resourceId,
      minutes: window.minutes,
      minutesWithData: replicas.filter((r) => r !== null).length,
      replicaSeconds,
      requests: counted.length > 0 ? Math.round(counted.reduce((a, b) => a + b, 0)) : null,
    };
  }

  /** One resource's metrics through the batch endpoint, by REST name; a per-metric error fails the query. */
  private async queryOne<N extends string>(
    resourceId: string,
    names: readonly N[],
    namespace: string,
    window: GrainWindow,
    aggregation: string,
  ): Promise<Map<N, ParsedMetric>> {
    const raw = await this.withTimeout(
      this.client.queryResources([resourceId], [...names], namespace, {
        startTime: new Date(window.firstMs),
        endTime: new Date(window.firstMs + window.minutes * GRAIN_MS),
        interval: GRAIN,
        aggregation,
      }),
    );
    let results: z.output<typeof RESULTS_SCHEMA>;
    try {
      results = parseWith(RESULTS_SCHEMA, raw, 'Azure Monitor metrics response');
    } catch (cause) {
      throw new ProviderError('PROVIDER_RESPONSE_INVALID', describe(cause), PROVIDER, { cause });
    }
    const mine = results.find((r) => r.resourceId?.toLowerCase() === resourceId.toLowerCase());
    if (!mine) {
      throw new ProviderError(
        'PROVIDER_RESPONSE_INVALID',
        `Azure Monitor answered without the queried resource ${resourceId}`,
        PROVIDER,
      );
    }
    const byName = new Map<N, ParsedMetric>();
    for (const metric of mine.metrics) {
      const name = metricNameOf(metric, names);
      if (!name) continue;
      if (metric.errorCode && metric.errorCode !== 'Success') {
        throw new ProviderError(
          'NO_DATA',
          `Azure Monitor returned ${metric.errorCode} for ${name}: ${metric.errorMessage ?? 'no message'}`,
          PROVIDER,
          { details: { metric: name, errorCode: metric.errorCode } },
        );
      }
      byName.set(name, metric);
    }
    return byName;
  }

  private async withTimeout<T>(promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ProviderError(
              'TIMEOUT',
              `Azure Monitor did not answer within ${this.timeoutMs} ms`,
              PROVIDER,
              {
                retryable: true,
              },
            ),
          ),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([promise, timeout]);
    } catch (error) {
      throw toProviderError(error);
    } finally {
      clearTimeout(timer);
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function toProviderError(error: unknown): Error {
  if (isGreenMlError(error)) return error;
  const rest = REST_ERROR_SCHEMA.safeParse(error);
  if (rest.success) {
    const status = rest.data.statusCode;
    if (status === 401 || status === 403) {
      return new ProviderError(
        'PROVIDER_UNAUTHORIZED',
        `Azure Monitor refused the credential (${status}); the identity needs Monitoring Reader on the container group`,
        PROVIDER,
        { statusCode: status, cause: error },
      );
    }
    const retryable = status === undefined || isRetryableStatus(status);
    return new ProviderError(
      'PROVIDER_HTTP',
      `Azure Monitor metrics request failed${status ? ` with ${status}` : ''}: ${rest.data.message}`,
      PROVIDER,
      { statusCode: status, retryable, cause: error },
    );
  }
  // The SDK's deserialiser throws TypeErrors on bodies without the expected arrays.
  if (error instanceof TypeError || error instanceof SyntaxError) {
    return new ProviderError(
      'PROVIDER_RESPONSE_INVALID',
      `Azure Monitor metrics response unreadable: ${error.message}`,
      PROVIDER,
      { cause: error },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** The SDK flattens `name` to the localised value ("CPU Usage"); the id ends with the REST name. */
function metricNameOf<N extends string>(metric: ParsedMetric, names: readonly N[]): N | undefined {
  const normalise = (s: string): string => s.replace(/[^a-z0-9]/gi, '').toLowerCase();
  const candidates = [metric.name, metric.id?.split('/').pop() ?? ''].map(normalise);
  return names.find((n) => candidates.includes(normalise(n)));
}

interface GrainWindow {
  firstMs: number;
  minutes: number;
  startMs: number;
  endMs: number;
}

function grainWindow(startedAt: string, endedAt: string): GrainWindow {
  const startMs = Date.parse(startedAt);
  const endMs = Date.parse(endedAt);
  const firstMs = Math.floor(startMs / GRAIN_MS) * GRAIN_MS;
  const minutes = endMs > startMs ? Math.ceil((endMs - firstMs) / GRAIN_MS) : 0;
  return { firstMs, minutes, startMs, endMs };
}

/** Per-grain sums over the metric's time series (one per container); null where none had data. */
function perGrain(
  metric: ParsedMetric | undefined,
  window: GrainWindow,
  field: 'average' | 'maximum' | 'total',
): (number | null)[] {
  const out: (number | null)[] = new Array<number | null>(window.minutes).fill(null);
  for (const series of metric?.timeseries ?? []) {
    for (const point of series.data ?? []) {
      const value = point[field];
      if (value === null || value === undefined) continue;
      const index = Math.floor((point.timeStamp.getTime() - window.firstMs) / GRAIN_MS);
      if (index < 0 || index >= window.minutes) continue;
      out[index] = (out[index] ?? 0) + value;
    }
  }
  return out;
}

function gapsOf(metric: MetricName, values: readonly (number | null)[], window: GrainWindow): MetricGap[] {
  const gaps: MetricGap[] = [];
  let openIndex: number | null = null;
  const close = (endIndex: number): void => {
    if (openIndex === null) return;
    const from = Math.max(window.firstMs + openIndex * GRAIN_MS, window.startMs);
    const to = Math.min(window.firstMs + endIndex * GRAIN_MS, window.endMs);
    gaps.push({ metric, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
    openIndex = null;
  };
  values.forEach((v, i) => {
    if (v === null && openIndex === null) openIndex = i;
    if (v !== null) close(i);
  });
  close(values.length);
  return gaps;
}

function overlapSeconds(window: GrainWindow, index: number): number {
  const from = Math.max(window.firstMs + index * GRAIN_MS, window.startMs);
  const to = Math.min(window.firstMs + (index + 1) * GRAIN_MS, window.endMs);
  return Math.max(0, to - from) / 1000;
}

function summarise(
  q: z.output<typeof QUERY_SCHEMA>,
  window: GrainWindow,
  metrics: ReadonlyMap<MetricName, ParsedMetric>,
): ContainerMetrics {
  const cpu = perGrain(metrics.get('CpuUsage'), window, 'average');
  const memory = perGrain(metrics.get('MemoryUsage'), window, 'average');
  const memoryMax = perGrain(metrics.get('MemoryUsage'), window, 'maximum');
  const samples: MetricSample[] = cpu.map((c, i) => ({
    at: new Date(window.firstMs + i * GRAIN_MS).toISOString(),
    cpuMillicores: c,
    memoryBytes: memory[i],
  }));
  const peaks = memoryMax.map((m, i) => m ?? memory[i]).filter((m): m is number => m !== null);
  const peakMemoryBytes = peaks.length > 0 ? Math.max(...peaks) : null;
  const lifetimeSeconds = (window.endMs - window.startMs) / 1000;

  let measuredCpuSeconds = 0;
  let coveredSeconds = 0;
  cpu.forEach((c, i) => {
    if (c === null) return;
    const seconds = overlapSeconds(window, i);
    measuredCpuSeconds += (c / 1000) * seconds;
    coveredSeconds += seconds;
  });
  const minutesWithCpu = cpu.filter((c) => c !== null).length;
  const coverage = window.minutes > 0 ? minutesWithCpu / window.minutes : 0;
  const base: Omit<ContainerMetrics, 'cpuSeconds' | 'measuredCpuSeconds' | 'utilisation'> = {
    resourceId: q.resourceId,
    startedAt: q.startedAt,
    endedAt: q.endedAt,
    grain: GRAIN,
    samples,
    gaps: [...gapsOf('CpuUsage', cpu, window), ...gapsOf('MemoryUsage', memory, window)],
    peakMemoryBytes,
    coverage,
  };
  const assumed = (reason: 'shorter-than-grain' | 'no-cpu-data'): ContainerMetrics => ({
    ...base,
    cpuSeconds: ASSUMED_UTILISATION * q.vcpus * lifetimeSeconds,
    measuredCpuSeconds: null,
    utilisation: { source: 'assumed-50%', fraction: ASSUMED_UTILISATION, reason },
  });
  if (lifetimeSeconds < GRAIN_MS / 1000) return assumed('shorter-than-grain');
  if (coveredSeconds === 0) return assumed('no-cpu-data');
  const fraction = Math.min(1, measuredCpuSeconds / (q.vcpus * coveredSeconds));
  if (minutesWithCpu === window.minutes) {
    return {
      ...base,
      cpuSeconds: measuredCpuSeconds,
      measuredCpuSeconds,
      utilisation: { source: 'measured', fraction },
    };
  }
  // Gaps take the mean rate of the measured minutes: zero would make missing data look green.
  return {
    ...base,
    cpuSeconds: measuredCpuSeconds * (lifetimeSeconds / coveredSeconds),
    measuredCpuSeconds,
    utilisation: { source: 'measured-with-gaps', fraction },
  };
}

/** The samples as energy intervals clipped to the lifetime (null CPU = gap), for Σ E_t · I_t. */
export function usageIntervalsOf(metrics: ContainerMetrics): UsageInterval[] {
  const window = grainWindow(metrics.startedAt, metrics.endedAt);
  const assumed = metrics.utilisation.source === 'assumed-50%';
  return metrics.samples.map((s, i) => {
    const seconds = overlapSeconds(window, i);
    const startsAt = new Date(Math.max(Date.parse(s.at), window.startMs)).toISOString();
    return {
      startsAt,
      seconds,
      cpuSeconds: assumed || s.cpuMillicores === null ? null : (s.cpuMillicores / 1000) * seconds,
    };
  });
}

export function containerGroupResourceId(
  subscriptionId: string,
  resourceGroup: string,
  groupName: string,
): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups/${groupName}`;
}

/** What `collectContainerUsage` needs from Azure Monitor: measured figures, or null where nothing was measured. */
export interface MeasuredContainerUsage {
  readonly cpuSeconds: number | null;
  readonly peakMemoryBytes: number | null;
  readonly metrics: ContainerMetrics;
}

/** Where the pipeline's container groups and apps live, and the identity that reads their metrics. */
export interface AzureMonitorScopeSettings {
  AZURE_SUBSCRIPTION_ID?: string;
  ACI_RESOURCE_GROUP?: string;
  METRICS_ENDPOINT?: string;
  DataStorage__clientId?: string;
}

/**
 * Reads a finished ACI group's usage from Azure Monitor in the group's own region (the batch
 * endpoint only answers for resources in its region), with the Function App's identity
 * (`DataStorage__clientId`, which needs Monitoring Reader on the resource group). `cpuSeconds` is
 * null when utilisation had to be assumed, so the stage is recorded as `assumed`, not as measured.
 */
export function azureMonitorUsageReader(
  settings: AzureMonitorScopeSettings,
  options: Omit<AzureMonitorMetricsOptions, 'endpoint'> = {},
): (input: {
  groupName: string;
  region: string;
  cpuCores: number;
  launchedAt: string;
  endedAt: string;
}) => Promise<MeasuredContainerUsage> {
  const { subscriptionId, resourceGroup } = scopeOf(settings, 'Azure Monitor usage');
  const clientFor = regionalClients(settings, options);
  return async (input) => {
    const metrics = await clientFor(input.region).containerUsage({
      resourceId: containerGroupResourceId(subscriptionId, resourceGroup, input.groupName),
      startedAt: input.launchedAt,
      endedAt: input.endedAt,
      vcpus: input.cpuCores,
    });
    return {
      cpuSeconds: metrics.utilisation.source === 'assumed-50%' ? null : metrics.cpuSeconds,
      peakMemoryBytes: metrics.peakMemoryBytes,
      metrics,
    };
  };
}

function scopeOf(
  settings: Pick<AzureMonitorScopeSettings, 'AZURE_SUBSCRIPTION_ID' | 'ACI_RESOURCE_GROUP'>,
  what: string,
): { subscriptionId: string; resourceGroup: string } {
  const { AZURE_SUBSCRIPTION_ID: subscriptionId, ACI_RESOURCE_GROUP: resourceGroup } = settings;
  if (!subscriptionId || !resourceGroup) {
    throw new ValidationError(`${what} needs AZURE_SUBSCRIPTION_ID and ACI_RESOURCE_GROUP`, [
      { path: subscriptionId ? 'ACI_RESOURCE_GROUP' : 'AZURE_SUBSCRIPTION_ID', message: 'required' },
    ]);
  }
  return { subscriptionId, resourceGroup };
}

/** One client per regional endpoint, with the Function App's identity: the batch endpoint only answers for its region. */
function regionalClients(
  settings: Pick<AzureMonitorScopeSettings, 'METRICS_ENDPOINT' | 'DataStorage__clientId'>,
  options: Omit<AzureMonitorMetricsOptions, 'endpoint'>,
): (region: string) => AzureMonitorMetrics {
  const clients = new Map<string, AzureMonitorMetrics>();
  return (region) => {
    const endpoint = metricsEndpointFor(region, settings.METRICS_ENDPOINT);
    let client = clients.get(endpoint);
    if (!client) {
      client = new AzureMonitorMetrics({
        managedIdentityClientId: settings.DataStorage__clientId,
        ...options,
        endpoint,
      });
      clients.set(endpoint, client);
    }
    return client;
  };
}

export function containerAppResourceId(
  subscriptionId: string,
  resourceGroup: string,
  appName: string,
): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.App/containerApps/${appName}`;
}

export type AppReplicaReader = (input: {
  appName: string;
  region: string;
  startedAt: string;
  endedAt: string;
}) => Promise<AppReplicaMetrics>;

/**
 * Reads a model API's replica-seconds on Container Apps from Azure Monitor (the apps live in
 * ACI_RESOURCE_GROUP, like the launcher creates them); same identity and endpoints as the ACI usage.
 */
export function azureMonitorReplicaReader(
  settings: AzureMonitorScopeSettings,
  options: Omit<AzureMonitorMetricsOptions, 'endpoint'> = {},
): AppReplicaReader {
  const { subscriptionId, resourceGroup } = scopeOf(settings, 'Azure Monitor replica metrics');
  const clientFor = regionalClients(settings, options);
  return (input) =>
    clientFor(input.region).containerAppReplicas({
      resourceId: containerAppResourceId(subscriptionId, resourceGroup, input.appName),
      startedAt: input.startedAt,
      endedAt: input.endedAt,
    });
}
