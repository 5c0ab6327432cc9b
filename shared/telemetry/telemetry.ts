import { metrics, trace, type Attributes, type Meter } from '@opentelemetry/api';
import { DefaultAzureCredential } from '@azure/identity';

/**
 * The telemetry the Portal workbook reads. Metric and event names are a contract with
 * infra/workbook.json (KQL over customMetrics / customEvents), so they live here as constants.
 * Every record carries `pipeline.correlation_id` (derived from the uploaded blob's name and ETag)
 * so an upload can be followed through its evaluation, the retrain decision and the retrain run.
 */
export const METRIC = {
  carbonIntensity: 'carbon.intensity',
  energyKwh: 'pipeline.energy_kwh',
  sci: 'pipeline.sci',
  accuracy: 'model.accuracy',
  functionCpuSeconds: 'function.cpu_seconds',
} as const;

export const EVENT = {
  retrainDecision: 'retrain.decision',
  retrainRun: 'retrain.run',
  batchQuarantined: 'batch.quarantined',
  modelPromoted: 'model.promoted',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];
export type EventName = (typeof EVENT)[keyof typeof EVENT];
export type TelemetryAttributes = Record<string, string | number | boolean>;

export interface Telemetry {
  metric(name: MetricName, value: number, attributes: TelemetryAttributes): void;
  event(name: EventName, attributes: TelemetryAttributes): void;
}

export interface RecordedTelemetry {
  kind: 'metric' | 'event';
  name: string;
  value: number | null;
  attributes: TelemetryAttributes;
  at: string;
}

/** Keeps everything in memory: the local driver's report and the tests read it back. */
export class RecordingTelemetry implements Telemetry {
  readonly records: RecordedTelemetry[] = [];
  constructor(private readonly now: () => Date = () => new Date()) {}

  metric(name: MetricName, value: number, attributes: TelemetryAttributes): void {
    this.records.push({ kind: 'metric', name, value, attributes, at: this.now().toISOString() });
  }

  event(name: EventName, attributes: TelemetryAttributes): void {
    this.records.push({ kind: 'event', name, value: null, attributes, at: this.now().toISOString() });
  }
}

/**
 * OpenTelemetry instruments exported to Application Insights by the Azure Monitor distro.
 * Gauges are recorded as histograms so every observation (one per stage, per batch) is kept;
 * events become spans with the event name, which App Insights stores as dependencies/requests
 * and the workbook queries by name.
 */
export class OpenTelemetryTelemetry implements Telemetry {
  private readonly meter: Meter;
  private readonly histograms = new Map<string, ReturnType<Meter['createHistogram']>>();

  constructor() {
    this.meter = metrics.getMeter('green-e2e-ml');
  }

  metric(name: MetricName, value: number, attributes: TelemetryAttributes): void {
    let histogram = this.histograms.get(name);
    if (!histogram) {
      histogram = this.meter.createHistogram(name);
      this.histograms.set(name, histogram);
    }
    histogram.record(value, attributes as Attributes);
  }

  event(name: EventName, attributes: TelemetryAttributes): void {
    const span = trace.getTracer('green-e2e-ml').startSpan(name, { attributes: attributes as Attributes });
    span.end();
  }
}

/** Fans out to several sinks (OpenTelemetry on Azure plus the in-memory record locally). */
export class CompositeTelemetry implements Telemetry {
  constructor(private readonly sinks: readonly Telemetry[]) {}
  metric(name: MetricName, value: number, attributes: TelemetryAttributes): void {
    for (const sink of this.sinks) sink.metric(name, value, attributes);
  }
  event(name: EventName, attributes: TelemetryAttributes): void {
    for (const sink of this.sinks) sink.event(name, attributes);
  }
}

let azureMonitorStarted = false;

/**
 * Telemetry for a process: Application Insights through OpenTelemetry when a connection string is
 * set, otherwise nothing leaves the process (the recording sink, if given, still sees everything).
 */
export function createTelemetry(
  connectionString: string | undefined,
  recording?: RecordingTelemetry,
): Telemetry {
  const sinks: Telemetry[] = recording ? [recording] : [];
  if (connectionString) {
    if (!azureMonitorStarted) {
      // Loaded lazily: the distro is heavy and pointless when telemetry is off.
      const { useAzureMonitor } = loadAzureMonitor();
      // App Insights has local (key) auth disabled: the exporter signs in as the app's identity.
      const credential = process.env.AZURE_CLIENT_ID
        ? new DefaultAzureCredential({ managedIdentityClientId: process.env.AZURE_CLIENT_ID })
        : undefined;
      useAzureMonitor({ azureMonitorExporterOptions: { connectionString, credential } });
      azureMonitorStarted = true;
    }
    sinks.push(new OpenTelemetryTelemetry());
  }
  return new CompositeTelemetry(sinks);
}

function loadAzureMonitor(): typeof import('@azure/monitor-opentelemetry') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@azure/monitor-opentelemetry');
}
