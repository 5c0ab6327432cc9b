import { mulberry32 } from '../random';
import type { EmbodiedCoefficients } from '../sci/embodied';
import type { EnergyCoefficients } from '../sci/energy';
import { capacityForTrees, type CapacityProfile, type ReplicaSize } from './capacityProfile';
import { addGrams, gramsOfReplicaInterval, NO_GRAMS, type ServingGrams } from './servingEmissions';

/**
 * Replays request arrivals against a sequence of serving configurations and accounts what each
 * would have cost: replica-seconds (zero while scaled to zero), busy CPU from the measured CPU per
 * row, emissions per hour at the region's real grid intensity, and every request's latency: the
 * P95 RTT from the home region, a cold start if no replica was up, and a service latency drawn from
 * a log-normal fitted to the measured p50/p99 at that hour's load (stretched for < 1 vCPU, as the
 * capacity profile's scaling assumption says).
 */
export type ReplayScaling = { kind: 'always-on' } | { kind: 'scale-to-zero'; cooldownSeconds: number };

export interface ReplayPeriod {
  readonly fromMs: number;
  readonly toMs: number;
  readonly label: string;
  readonly region: string;
  readonly rttMs: number;
  readonly size: ReplicaSize;
  readonly trees: number;
  readonly scaling: ReplayScaling;
}

export interface ReplayOptions {
  readonly capacity: CapacityProfile;
  readonly p99SloMs: number;
  /** A request not answered within this is failed (the caller's timeout). */
  readonly timeoutMs: number;
  readonly intensityAt: (region: string, ms: number) => number;
  readonly coefficients: EnergyCoefficients & EmbodiedCoefficients;
  readonly seed: number;
}

export interface ReplayResult {
  readonly requests: number;
  readonly failed: number;
  readonly overSlo: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly coldStarts: number;
  readonly coldStartP50Ms: number | null;
  readonly replicaSeconds: number;
  readonly grams: ServingGrams;
  readonly totalGrams: number;
  /** Null when nothing was served. */
  readonly gramsPer1000Predictions: number | null;
}

const HOUR_MS = 3_600_000;
const Z99 = 2.326;

export function replayServing(
  arrivalsMs: Float64Array,
  periods: readonly ReplayPeriod[],
  o: ReplayOptions,
): ReplayResult {
  const random = mulberry32(o.seed);
  const normal = (): number =>
    Math.sqrt(-2 * Math.log(Math.max(1e-12, random()))) * Math.cos(2 * Math.PI * random());
  const latencies: number[] = [];
  const coldStartLatencies: number[] = [];
  let failed = 0;
  let overSlo = 0;
  let replicaSeconds = 0;
  let grams = NO_GRAMS;
  let index = 0;

  for (const period of periods) {
    const entry = capacityForTrees(o.capacity, period.trees);
    const points = [...entry.loadPoints].sort((a, b) => a.offeredRowsPerSecond - b.offeredRowsPerSecond);
    const stretch = 1 / Math.min(1, period.size.cpuCores);
    const firstHour = Math.floor(period.fromMs / HOUR_MS);
    const hourCount = Math.ceil(period.toMs / HOUR_MS) - firstHour;
    const reservedByHour = new Float64Array(hourCount);
    const rowsByHour = new Float64Array(hourCount);
    const reserve = (fromMs: number, toMs: number): void => {
      let t = Math.max(fromMs, period.fromMs);
      const end = Math.min(toMs, period.toMs);
      while (t < end) {
        const hourEnd = (Math.floor(t / HOUR_MS) + 1) * HOUR_MS;
        const slice = Math.min(end, hourEnd) - t;
        reservedByHour[Math.floor(t / HOUR_MS) - firstHour] += slice / 1000;
        t += slice;
      }
    };
    const start = index;
    while (index < arrivalsMs.length && arrivalsMs[index] < period.toMs) {
      if (arrivalsMs[index] >= period.fromMs)
        rowsByHour[Math.floor(arrivalsMs[index] / HOUR_MS) - firstHour]++;
      index++;
    }
    if (period.scaling.kind === 'always-on') reserve(period.fromMs, period.toMs);

    // A new configuration starts cold when it scales to zero.
    let upUntilMs = Number.NEGATIVE_INFINITY;
    let readyAtMs = Number.NEGATIVE_INFINITY;
    let activeSinceMs = Number.NaN;
    for (let i = start; i < index; i++) {
      const t = arrivalsMs[i];
      if (t < period.fromMs) continue;
      let waitMs = 0;
      if (period.scaling.kind === 'scale-to-zero') {
        if (t > upUntilMs) {
          if (Number.isFinite(activeSinceMs)) reserve(activeSinceMs, upUntilMs);
          const coldMs =
            o.capacity.coldStartMs.samples[Math.floor(random() * o.capacity.coldStartMs.samples.length)];
          activeSinceMs = t;
          readyAtMs = t + coldMs;
          coldStartLatencies.push(coldMs);
        }
        waitMs = Math.max(0, readyAtMs - t);
        upUntilMs = Math.max(t, readyAtMs) + period.scaling.cooldownSeconds * 1000;
      }
      const hourRate = rowsByHour[Math.floor(t / HOUR_MS) - firstHour] / 3600;
      const point =
        points.find((p) => p.offeredRowsPerSecond * period.size.cpuCores >= hourRate) ??
        points[points.length - 1];
      const p50 = Math.max(0.01, point.p50Ms * stretch);
      const p99 = Math.max(p50, point.p99Ms * stretch);
      const serviceMs = p50 * Math.exp((Math.log(p99 / p50) / Z99) * normal());
      const latencyMs = period.rttMs + waitMs + serviceMs;
      if (latencyMs > o.timeoutMs) {
        failed++;
        continue;
      }
      latencies.push(latencyMs);
      if (latencyMs > o.p99SloMs) overSlo++;
    }
    if (period.scaling.kind === 'scale-to-zero' && Number.isFinite(activeSinceMs))
      reserve(activeSinceMs, upUntilMs);

    for (let h = 0; h < hourCount; h++) {
      if (reservedByHour[h] <= 0) continue;
      replicaSeconds += reservedByHour[h];
      grams = addGrams(
        grams,
        gramsOfReplicaInterval(
          {
            size: period.size,
            replicaSeconds: reservedByHour[h],
            busyCpuSeconds: (rowsByHour[h] * entry.cpuMsPerRow) / 1000,
            gramsPerKwh: o.intensityAt(period.region, (firstHour + h) * HOUR_MS),
          },
          o.coefficients,
        ),
      );
    }
  }
  latencies.sort((a, b) => a - b);
  coldStartLatencies.sort((a, b) => a - b);
  const served = latencies.length;
  const totalGrams = grams.operationalGrams + grams.embodiedGrams;
  return {
    requests: served + failed,
    failed,
    overSlo,
    p50Ms: nearestRank(latencies, 0.5),
    p99Ms: nearestRank(latencies, 0.99),
    coldStarts: coldStartLatencies.length,
    coldStartP50Ms: coldStartLatencies.length > 0 ? nearestRank(coldStartLatencies, 0.5) : null,
    replicaSeconds,
    grams,
    totalGrams,
    gramsPer1000Predictions: served > 0 ? (totalGrams / served) * 1000 : null,
  };
}

function nearestRank(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length))) - 1];
}
